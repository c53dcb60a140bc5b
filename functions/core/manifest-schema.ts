// zod's mini build: the same schemas, checks and messages as the classic build, which hangs some
// fifty methods on every schema object it makes (each `.min()` or `.optional()` makes another).
// Building these schemas is paid by every function at its cold start (see config.ts for numbers).
import * as z from 'zod/mini';
import { nonEmpty } from './zod-setup.js';

/** Ensemble strategies the core implements; see strategies.ts for the exact rules. */
export const STRATEGIES = ['soft-vote', 'weighted-mean', 'hard-vote', 'max', 'median', 'stacking'] as const;
export type StrategyName = (typeof STRATEGIES)[number];

/** The longest result-cache lifetime an ensemble may ask for: one year. */
export const MAX_CACHE_TTL_SECONDS = 31_536_000;

const slug = z
  .string()
  .check(z.regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be lowercase letters, digits and dashes (at most 63)'));

/** A list of names, or the name of a shared list declared at the top of the manifest. */
const namesOrRef = z.union([z.array(nonEmpty()).check(z.minLength(1)), nonEmpty()]);

/** A member's timeout when its manifest entry gives none. */
export const DEFAULT_TIMEOUT_SECONDS = 10;

const common = {
  id: slug,
  version: nonEmpty(),
  description: z.optional(z.string()),
  features: namesOrRef,
  labels: namesOrRef,
  timeoutSeconds: z._default(z.int().check(z.gte(1), z.lte(300)), DEFAULT_TIMEOUT_SECONDS),
  memoryMB: z._default(z.int().check(z.gte(128), z.lte(10240)), 1024),
};

const onnxModel = z.object({
  ...common,
  kind: z.literal('onnx'),
  file: z.string().check(z.regex(/\.onnx$/, 'must name a .onnx file relative to the manifest')),
  /** The graph input fed the features; unset: the graph's only input (see signature.ts). */
  input: z.optional(nonEmpty()),
  /** The graph output read as probabilities; unset: detected (`probabilities`, `output_probability`, ...). */
  output: z.optional(nonEmpty()),
});

const sagemakerModel = z.object({
  ...common,
  kind: z.literal('sagemaker'),
  endpoint: z.object({
    name: nonEmpty(),
    targetVariant: z.optional(nonEmpty()),
    contentType: z._default(z.enum(['text/csv', 'application/json']), 'application/json'),
    /** How the endpoint's answer becomes per-class probabilities. */
    response: z._default(
      z.discriminatedUnion('format', [
        z.object({ format: z.literal('probabilities'), field: z.optional(z.string()) }),
        z.object({ format: z.literal('positive-score'), field: z.optional(z.string()) }),
        z.object({ format: z.literal('named-fields'), field: z.optional(z.string()) }),
      ]),
      { format: 'probabilities' },
    ),
  }),
  /** Local stack only: the bundled ONNX file the local SageMaker-compatible endpoint serves. */
  localFile: z.optional(z.string()),
});

// Strict: a misspelt key ("shadows", "canaries") must be an error, not a feature silently off.
const ensemble = z.strictObject({
  name: slug,
  description: z.optional(z.string()),
  members: z.array(slug).check(z.minLength(1)),
  strategy: z.enum(STRATEGIES),
  weights: z.optional(z.record(z.string(), z.number().check(z.positive()))),
  quorum: z.optional(z.int().check(z.gte(1))),
  stacking: z.optional(z.object({ file: z.string().check(z.regex(/\.json$/, 'must name a .json file')) })),
  /** Models run with every request and recorded, never counted: how a candidate meets real traffic. */
  shadow: z.optional(z.array(slug)),
  /** A share of this ensemble's synchronous traffic served by another ensemble. */
  canary: z.optional(
    z.strictObject({
      ensemble: slug,
      percent: z
        .number({ error: 'must be a number from 0 to 100' })
        .check(z.gte(0, 'must be from 0 to 100'), z.lte(100, 'must be from 0 to 100')),
    }),
  ),
  /** Opt-in result cache: repeated rows are answered from the store for this long. */
  cache: z.optional(
    z.strictObject({
      ttlSeconds: z
        .int({
          error: (issue) =>
            issue.input === undefined ? 'is required (seconds)' : 'must be a whole number of seconds',
        })
        .check(
          z.gte(1, 'must be at least 1 second'),
          z.lte(MAX_CACHE_TTL_SECONDS, `must be at most ${MAX_CACHE_TTL_SECONDS} seconds (one year)`),
        ),
    }),
  ),
});

export const manifestSchema = z.object({
  featureSets: z._default(z.record(z.string(), z.array(nonEmpty()).check(z.minLength(1))), {}),
  labelSets: z._default(z.record(z.string(), z.array(nonEmpty()).check(z.minLength(2))), {}),
  models: z
    .array(
      z.discriminatedUnion('kind', [onnxModel, sagemakerModel], {
        error: 'kind must be "onnx" or "sagemaker"',
      }),
    )
    .check(z.minLength(1)),
  ensembles: z.array(ensemble).check(z.minLength(1)),
});

export type RawManifest = z.infer<typeof manifestSchema>;
export type RawModel = RawManifest['models'][number];
export type RawEnsemble = RawManifest['ensembles'][number];

/** The stacking meta-model file: p = softmax(coef · x + intercept) over concatenated member scores. */
export const stackingSchema = z.object({
  type: z.literal('softmax-linear'),
  members: z.array(nonEmpty()).check(z.minLength(1)),
  labels: z.array(nonEmpty()).check(z.minLength(2)),
  coef: z.array(z.array(z.number())),
  intercept: z.array(z.number()),
  featureMeans: z.array(z.number()),
  trainedOn: z.optional(z.string()),
});

export type StackingModel = z.infer<typeof stackingSchema>;

/** Formats a zod issue path as `ensembles[0].members[2]`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}
