// The resolve hook of otel-absent.mjs: every `@opentelemetry/*` specifier
// fails as a missing package does.
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('@opentelemetry/')) {
    const error = new Error(`Cannot find package '${specifier}' (hidden by otel-absent.mjs)`);
    error.code = 'ERR_MODULE_NOT_FOUND';
    throw error;
  }
  return next(specifier, context);
}
