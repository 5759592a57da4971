import { HandoffError } from './errors.js';

/** What a token function may give: the app JWT, or nothing (then the call goes out anonymous). */
export type TokenResult = string | null | undefined;

/**
 * Returns the app JWT, at once or as a Promise. The SDK calls it before every socket (re)connect
 * and every HTTP request that sends the token, and once more after the server answered
 * `unauthorized`: return a fresh token there (refresh it), and the SDK retries with it.
 */
export type TokenFunction = () => TokenResult | Promise<TokenResult>;

/** The `token` option: a fixed JWT or a `TokenFunction`. */
export type TokenOption = string | TokenFunction;

/**
 * Where the SDK gets the app JWT. A fixed string is returned as is (synchronously); a function is
 * called on every read. The source and the tokens live in private fields: never in
 * `console.log(handoff)` or JSON.
 */
export class TokenSource {
  readonly #source: TokenOption | undefined;

  constructor(source: TokenOption | undefined) {
    this.#source = source;
  }

  /** True when the token comes from a function: asking again may give a fresh one. */
  get refreshable(): boolean {
    return typeof this.#source === 'function';
  }

  /**
   * The token now (undefined: none), synchronously when the option is a string or the function
   * answers synchronously. A function that throws, rejects or returns something other than a
   * string gives `unauthorized` with its error as `cause`.
   */
  read(): string | undefined | Promise<string | undefined> {
    const source = this.#source;
    if (typeof source !== 'function') return source || undefined;
    let result: TokenResult | Promise<TokenResult>;
    try {
      result = source();
    } catch (err) {
      throw failed(err);
    }
    if (isPromiseLike(result)) return Promise.resolve(result).then(checked, (err: unknown) => Promise.reject(failed(err)));
    return checked(result);
  }

  /** `read()` as a Promise. */
  async get(): Promise<string | undefined> {
    return this.read();
  }
}

function isPromiseLike(x: unknown): x is PromiseLike<TokenResult> {
  return typeof x === 'object' && x !== null && typeof (x as { then?: unknown }).then === 'function';
}

function checked(token: unknown): string | undefined {
  if (token === undefined || token === null || token === '') return undefined;
  if (typeof token !== 'string') throw failed(new TypeError(`the token function returned ${typeof token}, not a string`));
  return token;
}

function failed(err: unknown): HandoffError {
  if (err instanceof HandoffError) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new HandoffError('unauthorized', `The token function failed: ${why}`, { cause: err });
}
