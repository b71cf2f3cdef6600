/** The slice of a pino logger the brokers use, so tests can pass a plain object. */
export interface BrokerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLogger: BrokerLogger = { info() {}, warn() {}, error() {} };
