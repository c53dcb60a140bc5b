/** One state of an ASL definition, loosely typed: definitions come from JSON files. */
export type AslState = Record<string, unknown> & { Type?: unknown };

/** An ASL definition (or a Map's ItemProcessor / a Parallel branch). */
export interface AslDefinition {
  StartAt: string;
  States: Record<string, AslState>;
  [field: string]: unknown;
}

/** What a local Task handler receives and returns: the state's effective input and its result. */
export type TaskHandler = (input: unknown) => Promise<unknown>;

/** A binder's answer for one state: the local handler, and optionally a replacement definition. */
export interface StateBinding {
  handler: TaskHandler;
  /** Replaces the state, e.g. a Distributed Map turned into a Task that a local handler runs. */
  state?: AslState;
}

/**
 * The plug point for emulating state types and Task resources: each binder looks at a state and
 * either binds it (returns a handler, maybe a replacement state) or passes (undefined). The Lambda
 * integration is one binder; a Distributed Map (ItemReader/ItemBatcher/ResultWriter) will be another.
 */
export interface StateBinder {
  bind(state: AslState, name: string, where: string): StateBinding | undefined;
}

/** A definition the local stack cannot run; the message names the state. */
export class AslBindingError extends Error {
  override name = 'AslBindingError';
}

/** A definition that uses a feature the local stack does not emulate (yet); the message names it. */
export class UnsupportedAslError extends AslBindingError {
  override name = 'UnsupportedAslError';
}

// aws-local-stepfunctions resolves TimeoutSecondsPath against the state's Parameters output, but AWS
// resolves it against the state input. Carrying the value through a hidden parameter gives the
// library what AWS would read; the handler strips it before the integration sees it.
const TIMEOUT_PARAM = '__localTimeoutSeconds';

/**
 * Walks a definition (Map ItemProcessor/Iterator and Parallel Branches included), binds every
 * Task (and any state a binder claims) to a local handler, and returns a definition rewritten where
 * needed plus the handlers keyed by state name (aws-local-stepfunctions keys them by name only).
 */
export function bindDefinition(
  definition: AslDefinition,
  binders: readonly StateBinder[],
): { definition: AslDefinition; handlers: Record<string, TaskHandler> } {
  const handlers: Record<string, TaskHandler> = {};
  const owners = new Map<string, string>();
  const walk = (def: AslDefinition, where: string): AslDefinition => {
    if (!def || typeof def !== 'object' || !def.States || typeof def.States !== 'object') {
      throw new AslBindingError(`${where || '(root)'}: has no States`);
    }
    const states: Record<string, AslState> = {};
    for (const [name, original] of Object.entries(def.States)) {
      const at = where ? `${where}.States.${name}` : `States.${name}`;
      // asl-validator crashes outright on a state named Branches (see shared/REFERENCE.md).
      if (name === 'Branches')
        throw new AslBindingError(`${at}: a state named "Branches" breaks the ASL validator`);
      let state = original;
      const bound = binders.reduce<StateBinding | undefined>(
        (b, binder) => b ?? binder.bind(state, name, at),
        undefined,
      );
      if (bound) {
        state = bound.state ?? state;
        if (owners.has(name)) {
          throw new AslBindingError(
            `${at}: another state with this name is at ${owners.get(name)}; local handlers are keyed by state name, so bound states need unique names`,
          );
        }
        owners.set(name, at);
        const fixed = carryTimeoutPath(state);
        state = fixed.state;
        handlers[name] = fixed.strip ? stripping(bound.handler) : bound.handler;
      } else if (state.Type === 'Task') {
        throw new UnsupportedAslError(
          `${at}: Task resource ${JSON.stringify(state.Resource)} is not emulated locally`,
        );
      } else if (state.Type === 'Map') {
        checkInlineMap(state, at);
        const key = state.ItemProcessor ? 'ItemProcessor' : 'Iterator';
        state = { ...state, [key]: walk(state[key] as AslDefinition, `${at}.${key}`) };
      } else if (state.Type === 'Parallel' && Array.isArray(state.Branches)) {
        state = {
          ...state,
          Branches: state.Branches.map((b, i) => walk(b as AslDefinition, `${at}.Branches[${i}]`)),
        };
      }
      states[name] = state;
    }
    return { ...def, States: states };
  };
  return { definition: walk(definition, ''), handlers };
}

function checkInlineMap(state: AslState, at: string): void {
  const config = (state.ItemProcessor as { ProcessorConfig?: { Mode?: string } } | undefined)
    ?.ProcessorConfig;
  const distributed = ['ItemReader', 'ItemBatcher', 'ResultWriter'].filter((f) => f in state);
  if (config?.Mode === 'DISTRIBUTED' || distributed.length) {
    throw new UnsupportedAslError(
      `${at}: a Distributed Map (${distributed.join(', ') || 'Mode DISTRIBUTED'}) is not emulated locally yet`,
    );
  }
}

function carryTimeoutPath(state: AslState): { state: AslState; strip: boolean } {
  const path = state.TimeoutSecondsPath;
  const params = state.Parameters;
  if (typeof path !== 'string' || params === null || typeof params !== 'object' || Array.isArray(params)) {
    return { state, strip: false };
  }
  return {
    state: {
      ...state,
      Parameters: { ...params, [`${TIMEOUT_PARAM}.$`]: path },
      TimeoutSecondsPath: `$.${TIMEOUT_PARAM}`,
    },
    strip: true,
  };
}

function stripping(handler: TaskHandler): TaskHandler {
  return (input) => {
    if (input !== null && typeof input === 'object' && TIMEOUT_PARAM in input) {
      const { [TIMEOUT_PARAM]: _timeout, ...rest } = input as Record<string, unknown>;
      return handler(rest);
    }
    return handler(input);
  };
}
