import { LocalTransport } from '../../lib/index.js';
import { transportConformance } from '../../lib/testing/index.js';

transportConformance({
  name: 'local',
  features: new LocalTransport().features,
  createTransport: () => new LocalTransport(),
});
