import { en } from 'zod/locales';
import * as z from 'zod/mini';

// The schemas are built with zod's mini build, which leaves the message locale unset (every issue
// would read "Invalid input"); the classic build sets English when imported. Set here once, so
// every message stays as it was. Process-wide, as the classic import's was.
z.config(en());

/** A string of at least one character (the schemas' most common field). */
export const nonEmpty = () => z.string().check(z.minLength(1));
