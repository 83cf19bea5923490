/**
 * `nest-herald/terminus`: health indicators for `@nestjs/terminus` 12 (an
 * optional peer, loaded by this subpath alone: the root entry never imports
 * it).
 */
export { HeraldHealthIndicator } from './herald-health.indicator.js';
export type { HeraldHealthOptions, HeraldRuntimeHealthOptions } from './herald-health.options.js';
export { HEALTH_STATS } from './herald-health.rules.js';
