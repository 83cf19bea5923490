export { EventsExplorer } from './events.explorer.js';
