import { parseArgs } from 'node:util';
import { UsageError } from './args.js';

/** Options of `fanout models add`. */
export interface AddArgs {
  command: 'add';
  file: string;
  id: string;
  features: string;
  labels: string;
  manifest: string;
  ensemble?: string;
  weight?: number;
  /** Default 1.0.0; a replaced model needs a new one. */
  version?: string;
  description?: string;
  input?: string;
  output?: string;
  timeoutSeconds?: number;
  /** A labelled CSV to measure accuracy on when the feature set has no bundled data set. */
  data?: string;
  /** Replace a model already in the manifest under this id (with a new version). */
  replace: boolean;
}

/** Options of `fanout models check`. */
export interface CheckArgs {
  command: 'check';
  manifest: string;
}

export const MODELS_USAGE = `usage: fanout models add <model.onnx> --id <id> --features <set> --labels <set>
                         [--ensemble <name> [--weight <w>]] [--version <v>] [--description <text>]
                         [--input <name>] [--output <name>] [--timeout <seconds>] [--data <rows.csv>]
                         [--replace] [--manifest <path>]
       fanout models check [--manifest <path>]

add    checks the model's signature against the feature and label sets (input and output are
       detected: a single float input; an output named probabilities or output_probability, or
       the only float [N, C] one; --input/--output name them), loads and scores it on the bundled
       data set of the feature set (or --data: a CSV with a header of feature names and a label
       column) and prints its accuracy, then copies it under models/<set>/, adds it to the manifest
       (and to --ensemble; a new name makes a soft-vote ensemble), records its hash in
       metrics.json and the model card, and writes its golden file.
check  runs the start check on every ONNX member of the manifest (and loads each with
       onnxruntime); exits 1 if any is not ready.

The manifest is --manifest, else $FANOUT_MANIFEST, else models/manifest.json.`;

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      id: { type: 'string' },
      features: { type: 'string' },
      labels: { type: 'string' },
      ensemble: { type: 'string', short: 'e' },
      weight: { type: 'string' },
      version: { type: 'string' },
      description: { type: 'string' },
      input: { type: 'string' },
      output: { type: 'string' },
      timeout: { type: 'string' },
      data: { type: 'string' },
      replace: { type: 'boolean' },
      manifest: { type: 'string' },
    },
  });
}

const positive = (raw: string | undefined, flag: string): number | undefined => {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, got "${raw}"`);
  return n;
};

/** Parses `fanout models add|check ...`; errors name the flag. */
export function parseModelsArgs(argv: string[], env: NodeJS.ProcessEnv): AddArgs | CheckArgs {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [group, command, file, extra] = positionals;
  if (group !== 'models') throw new UsageError(`unknown command "${group ?? ''}"`);
  const manifest = values.manifest ?? env.FANOUT_MANIFEST ?? 'models/manifest.json';
  if (command === 'check') {
    if (file !== undefined) throw new UsageError(`unexpected argument "${file}"`);
    return { command: 'check', manifest };
  }
  if (command !== 'add') throw new UsageError(`unknown command "models ${command ?? ''}": use add or check`);
  if (!file) throw new UsageError('missing <model.onnx>');
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  for (const flag of ['id', 'features', 'labels'] as const) {
    if (!values[flag]) throw new UsageError(`--${flag} is required`);
  }
  if (values.weight !== undefined && !values.ensemble) throw new UsageError('--weight needs --ensemble');
  const timeout = positive(values.timeout, '--timeout');
  if (timeout !== undefined && (!Number.isInteger(timeout) || timeout > 300)) {
    throw new UsageError('--timeout must be a whole number of seconds from 1 to 300');
  }
  return {
    command: 'add',
    file,
    id: values.id as string,
    features: values.features as string,
    labels: values.labels as string,
    manifest,
    ensemble: values.ensemble,
    weight: positive(values.weight, '--weight'),
    version: values.version,
    description: values.description,
    input: values.input,
    output: values.output,
    timeoutSeconds: timeout,
    data: values.data,
    replace: values.replace ?? false,
  };
}
