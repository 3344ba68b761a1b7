import { Logger } from '@aws-lambda-powertools/logger';
import type { Log } from '../ports.js';

export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'SILENT';

/**
 * Structured JSON logs through Powertools Logger. Callers pass ids, counts and error names only — never a
 * token, a message body or a key — so nothing here needs to redact.
 */
export function createLog(level: LogLevel, serviceName = 'relay-ws'): Log {
  const logger = new Logger({ serviceName, logLevel: level });
  return {
    debug: (message, fields) => logger.debug(message, { ...fields }),
    info: (message, fields) => logger.info(message, { ...fields }),
    warn: (message, fields) => logger.warn(message, { ...fields }),
    error: (message, fields) => logger.error(message, { ...fields }),
  };
}

/** For the moments before the context exists (or when it cannot be built). */
const LEVELS: readonly LogLevel[] = ['DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT'];
const envLevel = process.env.LOG_LEVEL?.toUpperCase();
export const bootLog: Log = createLog(LEVELS.find((level) => level === envLevel) ?? 'INFO');
