import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance, FastifySchema, preValidationHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import type { FieldError } from '../errors.js';
import { decimalPlaces, DECIMAL_PLACES, MONEY_DECIMALS } from './money.js';

/**
 * Bodies are checked strictly (no type coercion, unknown fields refused); the URL's strings are
 * coerced to the numbers their schemas ask for.
 */
export function installValidators(app: FastifyInstance): void {
  const common = { allErrors: true, useDefaults: true, multipleOfPrecision: 9, strict: false } as const;
  const body = addFormats.default(new Ajv.default({ ...common, coerceTypes: false, removeAdditional: false }));
  const url = addFormats.default(new Ajv.default({ ...common, coerceTypes: true, removeAdditional: false }));
  for (const ajv of [body, url]) {
    ajv.addKeyword('example');
    ajv.addKeyword({
      keyword: DECIMAL_PLACES,
      type: 'number',
      schemaType: 'number',
      validate: (places: number, value: number) => Number.isFinite(value) && decimalPlaces(value) <= places,
    });
  }
  // Compiling every route's schemas took about a tenth of an embedded start. Each is compiled when first
  // used, and the rest one per turn of the event loop once the server listens: start-up does not wait for
  // them, requests are answered between them, and a schema ajv refuses is logged within moments of start.
  const pending = new Set<() => ValidateFunction>();
  app.setValidatorCompiler(({ schema, httpPart }) => {
    let compiled: ValidateFunction | undefined;
    const compile = (): ValidateFunction => {
      pending.delete(compile);
      return (compiled ??= (httpPart === 'body' ? body : url).compile(schema as FastifySchema));
    };
    pending.add(compile);
    // Fastify reads a failed check's reasons from the validator's `errors`, as ajv's own functions keep them.
    const validate = Object.assign(
      (data: unknown) => {
        const check = compile();
        const valid = check(data);
        validate.errors = check.errors;
        return valid;
      },
      { errors: null as ValidateFunction['errors'] },
    );
    return validate;
  });
  app.addHook('onListen', (done) => {
    const next = (): void => {
      const compile = pending.values().next().value;
      if (!compile) return;
      try {
        compile();
      } catch (error) {
        app.log.error({ err: error }, 'a route schema does not compile: its requests will fail');
      }
      setImmediate(next);
    };
    setImmediate(next);
    done();
  });
}

export const validators = fp(installValidators, { name: 'validators' });

/** No control characters (PostgreSQL refuses NUL outright) and no unpaired UTF-16 surrogates, which are not characters. */
export const PRINTABLE = '^[^\\u0000-\\u001f\\u007f\\ud800-\\udfff]*$';
/** At least one character that shows: a name of spaces, zero-width or other invisible characters names no one. */
export const VISIBLE = '[^\\p{White_Space}\\p{Default_Ignorable_Code_Point}\\p{Cc}\\p{Cf}\\p{Cs}\\u2800]';
const PATTERN_MESSAGES: Record<string, string> = {
  [PRINTABLE]: 'contains control characters or unpaired surrogates',
  [VISIBLE]: 'must contain a visible character, not only spaces or invisible ones',
};

/**
 * Unknown query parameters are refused like unknown body fields, so a typo (`?stauts=`) is not read as "no
 * filter". Routes without a query schema get an empty one; WebSocket routes keep theirs (access_token included).
 */
export function refuseUnknownQuery(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    if (!route.schema) return;
    const query = route.schema.querystring as { type?: string; additionalProperties?: unknown } | undefined;
    if (query === undefined && route.schema.hide) return;
    if (query !== undefined && (query.type !== 'object' || query.additionalProperties !== undefined)) return;
    route.schema = { ...route.schema, querystring: { ...(query ?? { type: 'object', properties: {} }), additionalProperties: false } };
  });
}

// Fastify's own validators would drop unknown parameters (removeAdditional), not refuse them.
export const unknownQueryRefusal = fp(refuseUnknownQuery, { name: 'unknown-query-refusal', dependencies: ['validators'] });

/** One entry per bad field, named as the client wrote it. */
export function fieldErrors(errors: ErrorObject[], context: string): FieldError[] {
  const byField = new Map<string, string>();
  for (const e of errors) {
    // ajv's instancePath is '' or starts with '/'.
    let field = e.instancePath.slice(1).replaceAll('/', '.');
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'required') {
      field = join(field, String(e.params.missingProperty));
      message = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      field = join(field, String(e.params.additionalProperty));
      message = 'is not a known field';
    } else if (e.keyword === 'enum') {
      message = `must be one of ${(e.params.allowedValues as unknown[]).join(', ')}`;
    } else if (e.keyword === 'pattern') {
      message = PATTERN_MESSAGES[String(e.params.pattern)] ?? 'contains characters that are not allowed';
    } else if (e.keyword === DECIMAL_PLACES) {
      message = `must have at most ${MONEY_DECIMALS} decimals`;
    } else if (e.keyword === 'format') {
      message = `must be a valid ${String(e.params.format)}`;
    }
    const name = field || context;
    if (!byField.has(name)) byField.set(name, message);
  }
  return [...byField].map(([field, message]) => ({ field, message }));
}

const join = (path: string, name: string) => (path ? `${path}.${name}` : name);

/** Trims the named top-level string fields before validation, so length limits apply to what is kept. */
export function trimFields(...names: string[]): preValidationHookHandler {
  return (request, _reply, done) => {
    const body = request.body as Record<string, unknown> | null;
    if (body && typeof body === 'object' && !Array.isArray(body)) {
      for (const name of names) {
        const value = body[name];
        if (typeof value === 'string') body[name] = value.trim();
      }
    }
    done();
  };
}
