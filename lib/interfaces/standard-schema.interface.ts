/**
 * The Standard Schema interface (standardschema.dev, v1), written out here
 * so that no validator, and no types package, becomes a dependency: zod,
 * valibot and arktype schemas are assignable to it as they are.
 * @publicApi
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': StandardSchemaProps<Input, Output>;
}

/** The `~standard` property of a {@link StandardSchemaV1}. @publicApi */
export interface StandardSchemaProps<Input = unknown, Output = Input> {
  readonly version: 1;
  readonly vendor: string;
  readonly validate: (
    value: unknown,
    options?: { readonly libraryOptions?: Record<string, unknown> } | undefined,
  ) => StandardSchemaResult<Output> | Promise<StandardSchemaResult<Output>>;
  readonly types?: { readonly input: Input; readonly output: Output } | undefined;
}

/** What a schema's `validate` returns. @publicApi */
export type StandardSchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: readonly StandardSchemaIssue[] };

/** One validation problem. @publicApi */
export interface StandardSchemaIssue {
  readonly message: string;
  readonly path?: readonly (PropertyKey | { readonly key: PropertyKey })[] | undefined;
}

/** The input type of a schema. @publicApi */
export type SchemaInput<S> = S extends StandardSchemaV1<infer I, unknown> ? I : never;
/** The output type of a schema. @publicApi */
export type SchemaOutput<S> = S extends StandardSchemaV1<unknown, infer O> ? O : never;

/** Schemas by event, by source: `{ orders: { created: z.object(...) } }`. @publicApi */
export type EventSchemas = {
  readonly [source: string]: { readonly [event: string]: StandardSchemaV1 };
};

/** The catalog `post` takes with these schemas (their input types). @publicApi */
export type InputCatalog<T extends EventSchemas> = {
  [S in keyof T]: { [E in keyof T[S]]: SchemaInput<T[S][E]> };
};

/** The catalog handlers receive with these schemas (their output types). @publicApi */
export type OutputCatalog<T extends EventSchemas> = {
  [S in keyof T]: { [E in keyof T[S]]: SchemaOutput<T[S][E]> };
};
