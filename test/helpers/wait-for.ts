// The tests use the waitFor that `nest-herald/testing` ships.
export { waitFor, settleIo } from '../../lib/testing/wait-for.js';
