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

const checked = new WeakMap<Manifest, ReadonlyMap<string, SignatureCheck>>();

/**
 * The start check of the members this process serves, run once per served manifest and logged
 * once: a line per member that is not ready (with the reason, the file and the manifest), and
 * one line listing the ready ones with the tensors chosen. A member that fails is not run.
 */
export function modelChecks(manifest: Manifest): ReadonlyMap<string, SignatureCheck> {
  let checks = checked.get(manifest);
  if (!checks) {
    checks = checkOnnxModels(manifest);
    const ready: Record<string, string> = {};
    for (const [id, check] of checks) {
      if (check.ok) ready[id] = `${check.input} -> ${check.output}`;
      else {
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
    checked.set(manifest, checks);
  }
  return checks;
}

const reasons = new WeakMap<Manifest, ReadonlyMap<string, string>>();

/**
 * Why each served member is not ready, by model id (empty when all are). Built once per served
 * manifest, like the checks: the runner asks on every invocation.
 */
export function notReady(manifest: Manifest): ReadonlyMap<string, string> {
  let out = reasons.get(manifest);
  if (!out) {
    const found = new Map<string, string>();
    for (const [id, check] of modelChecks(manifest)) if (!check.ok) found.set(id, check.reason);
    out = found;
    reasons.set(manifest, out);
  }
  return out;
}
