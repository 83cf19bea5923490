/**
 * `nest-herald/testing`: what our own tests use, for yours.
 * - `EventsTestingModule.forRoot()` + `HeraldTestKit`: the app's events
 *   recorded, `expectPosted`, `whenIdle`, fake remote deliveries; runner-free
 *   (Jest, Vitest).
 * - `transportConformance(setup)`: the transport conformance suite, to run
 *   against a transport of your own under Jest (or Vitest with globals).
 * - `waitFor(predicate)`: wait for a condition, never for time.
 */
export {
  transportConformance,
  type BusLike,
  type ConformanceSetup,
} from './transport-conformance.js';
export { waitFor, settleIo } from './wait-for.js';
export { EventsTestingModule, type EventsTestingOptions } from './events-testing.module.js';
export {
  HeraldTestKit,
  EventExpectationError,
  type FakeDeliveryOptions,
} from './herald-test-kit.js';
export { RecordingTransport, type RecordingTransportOptions } from './recording.transport.js';
export { matchesPattern, type EventMatcher, type DataPattern } from './event.matcher.js';
