/**
 * The slice of a pino logger the parts write to. Each part takes the levels it uses
 * (`Pick<Logger, 'info' | 'warn'>`), so a pino or Fastify logger fits and a test can pass a plain object.
 */
export interface Logger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
