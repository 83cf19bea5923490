import { LocalTransport } from '../../lib/index.js';
import { transportConformance } from './transport-conformance.js';

transportConformance({
  name: 'local',
  features: new LocalTransport().features,
  createTransport: () => new LocalTransport(),
});
