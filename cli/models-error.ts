/** A problem that stops a `fanout models` command: its message is the whole story (no usage text). */
export class ModelsError extends Error {
  override name = 'ModelsError';
}
