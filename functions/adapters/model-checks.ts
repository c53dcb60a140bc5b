import { type Manifest, type OnnxModelSpec, shownPath } from '../core/manifest.js';
import { checkSignature, type SignatureCheck } from '../core/signature.js';
import { logger } from './logger.js';
import { OnnxFileError, readOnnxFile } from './onnx-file.js';

/**
 * The start check of one ONNX member, from its file alone (no runtime loaded): the file exists and
 * is an ONNX model, and its graph takes the manifest's features and gives its labels (signature.ts).
 */
export function checkOnnxFile(model: OnnxModelSpec, manifestPath: string): SignatureCheck {
  const manifest = shownPath(manifestPath);
  let signature: ReturnType<typeof readOnnxFile>['signature'];
  try {
    signature = readOnnxFile(model.file).signature;
  } catch (err) {
    if (!(err instanceof OnnxFileError)) throw err;
    const fix = err.missing ? `: check "file" in ${manifest}` : '';
    return { ok: false, reason: `${model.id}: model file ${model.manifestFile} ${err.message}${fix}` };
  }
  return checkSignature({ ...model, file: model.manifestFile }, signature, manifest);
}

/** Every ONNX member's start check, by model id. */
export function checkOnnxModels(manifest: Manifest): Map<string, SignatureCheck> {
  const out = new Map<string, SignatureCheck>();
  for (const model of manifest.models.values()) {
    if (model.kind === 'onnx') out.set(model.id, checkOnnxFile(model, manifest.path));
  }
  return out;
}

/** A served manifest's start check, and why each member that failed it is not ready. */
interface Checked {
  checks: ReadonlyMap<string, SignatureCheck>;
  notReady: ReadonlyMap<string, string>;
}

const checked = new WeakMap<Manifest, Checked>();

/**
 * The start check of the members this process serves, run once per served manifest and logged
 * once: a line per member that is not ready (with the reason, the file and the manifest), and
 * one line listing the ready ones with the tensors chosen. A member that fails is not run.
 */
export function modelChecks(manifest: Manifest): ReadonlyMap<string, SignatureCheck> {
  return checkedOnce(manifest).checks;
}

/**
 * Why each served member is not ready, by model id (empty when all are). Built with the checks,
 * once per served manifest: the runner asks on every invocation.
 */
export function notReady(manifest: Manifest): ReadonlyMap<string, string> {
  return checkedOnce(manifest).notReady;
}

function checkedOnce(manifest: Manifest): Checked {
  let done = checked.get(manifest);
  if (!done) {
    const checks = checkOnnxModels(manifest);
    const ready: Record<string, string> = {};
    const reasons = new Map<string, string>();
    for (const [id, check] of checks) {
      if (check.ok) ready[id] = `${check.input} -> ${check.output}`;
      else {
        reasons.set(id, check.reason);
        const model = manifest.models.get(id) as OnnxModelSpec;
        logger.error('model not ready', {
          model: id,
          file: model.manifestFile,
          manifest: shownPath(manifest.path),
          reason: check.reason,
        });
      }
    }
    logger.info('models checked', { ready });
    done = { checks, notReady: reasons };
    checked.set(manifest, done);
  }
  return done;
}
