/**
 * `nest-herald/testing`: what our own tests use, for yours.
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
