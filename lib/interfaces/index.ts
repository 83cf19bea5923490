export type { EventsModuleOptions, EventsModuleExtras } from './events-module-options.interface.js';
export type { OnEventMetadata } from './on-event-metadata.interface.js';
