// `node --import ./bench/harness/otel-absent.mjs`: `@opentelemetry/*` cannot
// be imported, as in an app that does not install the optional peer
// (BENCH_OTEL=absent; bench/harness/otel-overhead.mjs puts it in NODE_OPTIONS).
import { register } from 'node:module';

register('./otel-absent-hooks.mjs', import.meta.url);
