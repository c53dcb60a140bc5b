import * as z from 'zod';

/** Ensemble strategies the core implements; see strategies.ts for the exact rules. */
export const STRATEGIES = ['soft-vote', 'weighted-mean', 'hard-vote', 'max', 'median', 'stacking'] as const;
export type StrategyName = (typeof STRATEGIES)[number];

/** The longest result-cache lifetime an ensemble may ask for: one year. */
export const MAX_CACHE_TTL_SECONDS = 31_536_000;

const slug = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be lowercase letters, digits and dashes (at most 63)');

/** A list of names, or the name of a shared list declared at the top of the manifest. */
const namesOrRef = z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]);

const common = {
  id: slug,
  version: z.string().min(1),
  description: z.string().optional(),
  features: namesOrRef,
  labels: namesOrRef,
  timeoutSeconds: z.int().min(1).max(300).default(10),
  memoryMB: z.int().min(128).max(10240).default(1024),
};

const onnxModel = z.object({
  ...common,
  kind: z.literal('onnx'),
  file: z.string().regex(/\.onnx$/, 'must name a .onnx file relative to the manifest'),
  /** The graph input fed the features; unset: the graph's only input (see signature.ts). */
  input: z.string().min(1).optional(),
  /** The graph output read as probabilities; unset: detected (`probabilities`, `output_probability`, ...). */
  output: z.string().min(1).optional(),
});

const sagemakerModel = z.object({
  ...common,
  kind: z.literal('sagemaker'),
  endpoint: z.object({
    name: z.string().min(1),
    targetVariant: z.string().min(1).optional(),
    contentType: z.enum(['text/csv', 'application/json']).default('application/json'),
    /** How the endpoint's answer becomes per-class probabilities. */
    response: z
      .discriminatedUnion('format', [
        z.object({ format: z.literal('probabilities'), field: z.string().optional() }),
        z.object({ format: z.literal('positive-score'), field: z.string().optional() }),
        z.object({ format: z.literal('named-fields'), field: z.string().optional() }),
      ])
      .default({ format: 'probabilities' }),
  }),
  /** Local stack only: the bundled ONNX file the local SageMaker-compatible endpoint serves. */
  localFile: z.string().optional(),
});

const ensemble = z
  .object({
    name: slug,
    description: z.string().optional(),
    members: z.array(slug).min(1),
    strategy: z.enum(STRATEGIES),
    weights: z.record(z.string(), z.number().positive()).optional(),
    quorum: z.int().min(1).optional(),
    stacking: z.object({ file: z.string().regex(/\.json$/, 'must name a .json file') }).optional(),
    /** Models run with every request and recorded, never counted: how a candidate meets real traffic. */
    shadow: z.array(slug).optional(),
    /** A share of this ensemble's synchronous traffic served by another ensemble. */
    canary: z
      .object({
        ensemble: slug,
        percent: z
          .number({ error: 'must be a number from 0 to 100' })
          .min(0, 'must be from 0 to 100')
          .max(100, 'must be from 0 to 100'),
      })
      .strict()
      .optional(),
    /** Opt-in result cache: repeated rows are answered from the store for this long. */
    cache: z
      .strictObject({
        ttlSeconds: z
          .int({
            error: (issue) =>
              issue.input === undefined ? 'is required (seconds)' : 'must be a whole number of seconds',
          })
          .min(1, 'must be at least 1 second')
          .max(MAX_CACHE_TTL_SECONDS, `must be at most ${MAX_CACHE_TTL_SECONDS} seconds (one year)`),
      })
      .optional(),
    // Strict: a misspelt key ("shadows", "canaries") must be an error, not a feature silently off.
  })
  .strict();

export const manifestSchema = z.object({
  featureSets: z.record(z.string(), z.array(z.string().min(1)).min(1)).default({}),
  labelSets: z.record(z.string(), z.array(z.string().min(1)).min(2)).default({}),
  models: z
    .array(
      z.discriminatedUnion('kind', [onnxModel, sagemakerModel], {
        error: 'kind must be "onnx" or "sagemaker"',
      }),
    )
    .min(1),
  ensembles: z.array(ensemble).min(1),
});

export type RawManifest = z.infer<typeof manifestSchema>;
export type RawModel = RawManifest['models'][number];
export type RawEnsemble = RawManifest['ensembles'][number];

/** The stacking meta-model file: p = softmax(coef · x + intercept) over concatenated member scores. */
export const stackingSchema = z.object({
  type: z.literal('softmax-linear'),
  members: z.array(z.string().min(1)).min(1),
  labels: z.array(z.string().min(1)).min(2),
  coef: z.array(z.array(z.number())),
  intercept: z.array(z.number()),
  featureMeans: z.array(z.number()),
  trainedOn: z.string().optional(),
});

export type StackingModel = z.infer<typeof stackingSchema>;

/** Formats a zod issue path as `ensembles[0].members[2]`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}
