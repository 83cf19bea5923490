export { OnEvent, type OnEventDecorator } from './on-event.decorator.js';
export { EventData, CurrentEvent } from './event-params.decorator.js';
