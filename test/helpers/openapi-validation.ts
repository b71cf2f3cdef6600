import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { parseKeepingNumbers } from './json-literals.js';

/**
 * Checks every answer a service sends against the service's own /openapi.json, as a validating proxy would: the
 * path and method are documented, the status is declared for them, the media type is declared for that status,
 * and the body matches its schema, money compared on the digits as written (`x-decimal-places: 2` means exactly
 * two decimals, so `200` where `200.00` is due fails). Violations are collected here and fail the running test
 * (test/helpers/openapi-check.ts); every check is counted for the run's summary.
 */
export function checkAnswersAgainstOpenApi(app: FastifyInstance): void {
  let contract: Contract | undefined;
  app.addHook('onSend', async (request, reply, payload) => {
    try {
      contract ??= new Contract(app.swagger() as unknown as OpenApiDocument);
      const routeUrl = request.routeOptions.url;
      contract.check({
        method: request.method,
        path: request.url.split('?')[0] ?? '',
        route: routeUrl === undefined ? undefined : { url: routeUrl, hidden: request.routeOptions.schema?.hide === true },
        status: reply.statusCode,
        contentType: String(reply.getHeader('content-type') ?? ''),
        body: typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString() : payload === null || payload === undefined ? '' : undefined,
      });
    } catch (error) {
      violations.push(`the OpenAPI check itself failed on ${request.method} ${request.url}: ${String(error)}`);
    }
    return payload;
  });
}

/**
 * How a request breaks the service's document, as a validating proxy would see it: an undocumented path or
 * method, a missing required parameter, an undocumented query parameter, a body its schema refuses.
 */
export function requestViolations(app: FastifyInstance, request: { method: string; url: string; headers?: Record<string, string>; body?: string }): string[] {
  const doc = app.swagger() as unknown as OpenApiDocument;
  const [pathPart = '', query = ''] = request.url.split('?');
  const where = `${request.method} ${request.url}`;
  const template = Object.keys(doc.paths).find((path) => new RegExp(`^${path.replace(/\{\w+\}/g, '[^/]+')}$`).test(pathPart));
  const operation = template === undefined ? undefined : doc.paths[template]?.[request.method.toLowerCase()];
  if (!operation) return [`${where}: no such path and method in /openapi.json`];
  const found: string[] = [];
  const sent = new URLSearchParams(query);
  const headers = Object.fromEntries(Object.entries(request.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  for (const parameter of operation.parameters ?? []) {
    const present = parameter.in === 'query' ? sent.has(parameter.name) : parameter.in === 'header' ? parameter.name.toLowerCase() in headers : true;
    if (parameter.required && !present) found.push(`${where}: the required ${parameter.in} parameter ${parameter.name} is missing`);
  }
  const documented = new Set((operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name));
  for (const name of sent.keys()) if (!documented.has(name)) found.push(`${where}: the query parameter ${name} is not documented`);
  const schema = operation.requestBody?.content?.['application/json']?.schema;
  if (request.body !== undefined && schema !== undefined) {
    const ajv = addFormats.default(new Ajv.default({ strict: false, allErrors: true }));
    ajv.addSchema({ components: doc.components }, 'openapi');
    const validate = ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"openapi#/components/')) as object);
    if (!validate(JSON.parse(request.body))) found.push(`${where}: the body does not match its schema: ${ajv.errorsText(validate.errors)}`);
  }
  return found;
}

/** What the checks found since the last call: violations, and how often each route and status was checked. */
export function takeResults(): { violations: string[]; checked: Map<string, number>; declared: Set<string> } {
  const results = { violations: violations.splice(0), checked: new Map(checked), declared: new Set(declared) };
  checked.clear();
  declared.clear();
  return results;
}

const violations: string[] = [];
/** `GET /orders/{id} 200` → how many answers were checked; hidden routes count as `… (not documented)`. */
const checked = new Map<string, number>();
/** Every `METHOD path status` some checked document declares. */
const declared = new Set<string>();

interface MediaType {
  schema?: unknown;
}
interface Response {
  content?: Record<string, MediaType>;
}
interface Operation {
  parameters?: { name: string; in: string; required?: boolean }[];
  requestBody?: { content?: Record<string, MediaType> };
  responses: Record<string, Response>;
}
interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components?: unknown;
}
interface Answer {
  method: string;
  path: string;
  route: { url: string; hidden: boolean } | undefined;
  status: number;
  contentType: string;
  /** undefined for a stream (static files), which is not read. */
  body: string | undefined;
}

const DECIMALS = 'x-decimal-places';

class Contract {
  private readonly ajv: Ajv.default;
  private readonly validators = new Map<string, ValidateFunction>();
  /** The numbers of the body being validated, as written, by JSON pointer. */
  private numbers = new Map<string, string>();

  constructor(private readonly doc: OpenApiDocument) {
    this.ajv = addFormats.default(new Ajv.default({ strict: false, allErrors: true }));
    this.ajv.addKeyword({
      keyword: DECIMALS,
      type: 'number',
      schemaType: 'number',
      validate: (places: number, _value: number, _schema?: unknown, context?: { instancePath: string }) =>
        new RegExp(`^-?\\d+\\.\\d{${places}}$`).test(this.numbers.get(context?.instancePath ?? '') ?? ''),
    });
    this.ajv.addSchema({ components: doc.components }, 'openapi');
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        for (const status of Object.keys(operation.responses)) declared.add(`${method.toUpperCase()} ${path} ${status}`);
      }
    }
  }

  check(answer: Answer): void {
    const method = answer.method === 'HEAD' ? 'GET' : answer.method;
    if (answer.route?.hidden) {
      count(`${method} ${answer.route.url} (not documented)`);
      return;
    }
    const where = `${answer.method} ${answer.path} → ${answer.status}`;
    if (!answer.route) {
      // No route matched: whatever answered (404, 401, 429 ...) must be a problem, as on any route.
      count(`${method} (no route) ${answer.status}`);
      this.checkBody(where, { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } }, answer, 'problem');
      return;
    }
    // The router ignores a trailing slash: the document lists the slashed paths clients use (/orders/) and says
    // in its description that every other path takes one too, so those are checked as the path without it.
    const template = answer.route.url.replace(/:(\w+)/g, '{$1}');
    const slashed = answer.path.length > 1 && answer.path.endsWith('/') && !template.endsWith('/') ? `${template}/` : template;
    const path = this.doc.paths[slashed] ? slashed : template;
    count(`${method} ${path} ${answer.status}`);
    const operation = this.doc.paths[path]?.[method.toLowerCase()];
    if (!operation) return void violations.push(`${where}: ${method} ${path} is served but not in /openapi.json`);
    const response = operation.responses[String(answer.status)] ?? operation.responses[`${String(answer.status)[0]}XX`] ?? operation.responses.default;
    if (!response) {
      return void violations.push(`${where}: status ${answer.status} is not declared for ${method} ${path} (declared: ${Object.keys(operation.responses).join(', ')})`);
    }
    if (answer.method === 'HEAD') return;
    this.checkBody(where, response.content, answer, `${method} ${path} ${answer.status}`);
  }

  private checkBody(where: string, content: Record<string, MediaType> | undefined, answer: Answer, key: string): void {
    if (answer.body === undefined) return;
    if (answer.body === '') {
      if (content && answer.status !== 204 && answer.status !== 304) violations.push(`${where}: the body is empty, but one is declared`);
      return;
    }
    const mediaType = answer.contentType.split(';')[0]!.trim().toLowerCase();
    const declaredMedia = content?.[mediaType];
    if (!declaredMedia) {
      return void violations.push(`${where}: sent ${mediaType || 'no content type'}, declared ${Object.keys(content ?? {}).join(', ') || 'no body'}: ${excerpt(answer.body)}`);
    }
    if (!/[/+]json$/.test(mediaType) || declaredMedia.schema === undefined) return;
    let parsed: ReturnType<typeof parseKeepingNumbers>;
    try {
      parsed = parseKeepingNumbers(answer.body);
    } catch {
      return void violations.push(`${where}: the body is not JSON: ${excerpt(answer.body)}`);
    }
    const validate = this.validator(`${key} ${mediaType}`, declaredMedia.schema);
    this.numbers = parsed.numbers;
    if (!validate(parsed.value)) {
      const errors = (validate.errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message ?? ''}${e.keyword === DECIMALS ? ` (written ${this.numbers.get(e.instancePath)})` : ''}`);
      violations.push(`${where}: the body does not match its schema: ${errors.join('; ')}: ${excerpt(answer.body)}`);
    }
    if (mediaType === 'application/problem+json' && (parsed.value as { status?: unknown }).status !== answer.status) {
      violations.push(`${where}: the problem says status ${String((parsed.value as { status?: unknown }).status)}`);
    }
  }

  private validator(key: string, schema: unknown): ValidateFunction {
    let validate = this.validators.get(key);
    if (!validate) {
      // The schema's references point into the document's components, registered as "openapi".
      validate = this.ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"openapi#/components/')) as object);
      this.validators.set(key, validate);
    }
    return validate;
  }
}

const count = (key: string) => checked.set(key, (checked.get(key) ?? 0) + 1);
const excerpt = (body: string) => (body.length > 300 ? `${body.slice(0, 300)}…` : body);
