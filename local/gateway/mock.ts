import { Compile, parse } from 'velocityjs';
import type { LocalWebsocketEvent } from './types.js';

/** A template that could not be parsed or rendered: the integration fails, as API Gateway's "Unable to transform". */
export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

type PathStep = string | number;

/** `.name`, `[3]`, `['name']` or `["name"]`, one at a time after the leading `$`. */
const STEP = /^(?:\.([^.[\]\s'"]+)|\[(\d+)\]|\['([^']*)'\]|\["([^"]*)"\])/;

/** The steps of a JSONPath of the forms API Gateway templates use; anything else (wildcards, filters) throws. */
export function parseJsonPath(path: string): PathStep[] {
  if (!path.startsWith('$')) throw new TemplateError(`unsupported JSONPath ${JSON.stringify(path)}`);
  const steps: PathStep[] = [];
  let rest = path.slice(1);
  while (rest !== '') {
    const match = STEP.exec(rest);
    if (match === null) throw new TemplateError(`unsupported JSONPath ${JSON.stringify(path)}`);
    const [whole, name, index, single, double] = match;
    steps.push(index === undefined ? (name ?? single ?? double ?? '') : Number(index));
    rest = rest.slice(whole.length);
  }
  return steps;
}

const NOTHING = Symbol('nothing');

function follow(root: unknown, steps: readonly PathStep[]): unknown {
  let current = root;
  for (const step of steps) {
    if (typeof step === 'number') {
      if (!Array.isArray(current) || step >= current.length) return NOTHING;
      current = current[step];
    } else {
      if (typeof current !== 'object' || current === null || Array.isArray(current)) return NOTHING;
      if (!Object.prototype.hasOwnProperty.call(current, step)) return NOTHING;
      current = (current as Record<string, unknown>)[step];
    }
  }
  return current;
}

function hex4(code: number): string {
  return code.toString(16).toUpperCase().padStart(4, '0');
}

const JS_ESCAPES: Readonly<Record<string, string>> = {
  '\b': '\\b',
  '\n': '\\n',
  '\t': '\\t',
  '\f': '\\f',
  '\r': '\\r',
  "'": "\\'",
  '"': '\\"',
  '\\': '\\\\',
  '/': '\\/',
};

/**
 * `$util.escapeJavaScript`: Java's StringEscapeUtils.escapeJavaScript, which API Gateway documents. It escapes `'` as
 * `\'` too (not valid inside a JSON string, as AWS warns), and every character past U+007F as a `\u` escape of four hex digits.
 */
export function escapeJavaScript(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  let out = '';
  for (let i = 0; i < text.length; i += 1) {
    const char = text.charAt(i);
    const code = text.charCodeAt(i);
    const named = JS_ESCAPES[char];
    if (named !== undefined) out += named;
    else if (code < 0x20 || code > 0x7f) out += `\\u${hex4(code)}`;
    else out += char;
  }
  return out;
}

/**
 * A string as Java's `String` is in API Gateway's VTL: `matches(regex)` tests the whole string (templates use it to
 * validate what they echo).
 */
class JavaString extends String {
  /** Not the native one: velocityjs then renders the value as its text (a native toString makes it a map). */
  override toString(): string {
    return super.toString();
  }

  matches(regex: unknown): boolean {
    return new RegExp(`^(?:${String(regex)})$`).test(String(this));
  }
}

/**
 * What `$input.path` hands the template: strings as Java strings; objects and arrays as their JSON text (AWS
 * gives a map or list, which has no string methods either, and rendering JSON text never recurses into a deeply
 * nested value); numbers and booleans as they are.
 */
function templateValue(value: unknown): unknown {
  if (typeof value === 'string') return new JavaString(value);
  if (typeof value === 'object' && value !== null) {
    try {
      return JSON.stringify(value);
    } catch {
      // Nested too deep to write out here (the client's frame parsed, so it is valid JSON): nothing to render.
      return '';
    }
  }
  return value;
}

/** `$input` over one client frame. */
function inputOf(body: string) {
  let parsed: unknown = NOTHING;
  try {
    parsed = JSON.parse(body);
  } catch {
    // Not JSON: every path finds nothing.
  }
  const at = (path: unknown): unknown => follow(parsed, parseJsonPath(String(path)));
  return {
    body,
    /** The value at the path; nothing (or JSON null) gives an empty string. */
    path: (path: unknown): unknown => {
      const value = at(path);
      return value === NOTHING || value === null ? '' : templateValue(value);
    },
    /** The value at the path as JSON text; nothing gives an empty string. */
    json: (path: unknown): string => {
      const value = at(path);
      return value === NOTHING ? '' : JSON.stringify(value);
    },
  };
}

const util = {
  escapeJavaScript,
  parseJson: (text: unknown): unknown => JSON.parse(String(text)),
};

type Ast = ReturnType<typeof parse>;

/** The response templates of one gateway's mock routes, each parsed once, on first use. */
export class MockTemplates {
  private readonly parsed = new Map<string, Ast>();

  /** Renders `template` for one message; throws a TemplateError when it cannot be parsed or rendered. */
  render(template: string, event: LocalWebsocketEvent): string {
    let ast = this.parsed.get(template);
    if (ast === undefined) {
      try {
        ast = parse(template);
      } catch (error) {
        throw new TemplateError('the response template does not parse', { cause: error });
      }
      this.parsed.set(template, ast);
    }
    try {
      const context = { context: event.requestContext, input: inputOf(event.body ?? ''), util };
      return new Compile(ast, { escape: false }).render(context);
    } catch (error) {
      throw new TemplateError('the response template failed to render', { cause: error });
    }
  }
}
