/**
 * Error classes. Every message names the input, what was expected and what was found,
 * so a user can fix the problem without reading the source.
 */

/** Base class of every error Lumen raises on purpose. */
export class LumenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A user-supplied file, config or request is malformed. */
export class InputError extends LumenError {}

/** A tensor op was called with shapes, dtypes or values it cannot accept. */
export class OpError extends LumenError {
  constructor(readonly op: string, message: string) {
    super(`${op}: ${message}`);
  }
}
