import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { PredictionRecord } from '../core/combine.js';
import { UpstreamError } from '../core/errors.js';
import type { Claim, IdEntry, IdempotencyStore, PredictionStore, PutResult } from '../core/ports.js';

/** Key layout of the single table: predictions live under `PRED#<id>`. */
export const predictionKey = (id: string) => ({ pk: `PRED#${id}`, sk: 'PRED' });

const IN_PROGRESS = 'IN_PROGRESS';
const COMPLETED = 'COMPLETED';

const conditionFailed = (err: unknown) =>
  err instanceof ConditionalCheckFailedException || (err as Error).name === 'ConditionalCheckFailedException';

/**
 * Prediction records in one DynamoDB table (partition key `pk`, sort key `sk`). One item per id:
 * first an in-progress claim `{status: IN_PROGRESS, requestHash, ensemble, claimToken, expiresAt}`
 * when a client id is given, then the record `{status: COMPLETED, requestHash, record}`. Every
 * transition is one conditional write (dynalite, the local DynamoDB, has no transactions).
 */
export class DynamoPredictionStore implements PredictionStore, IdempotencyStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async putPrediction(record: PredictionRecord): Promise<PutResult> {
    try {
      // An update, not a put: it keeps the claim's requestHash, so a repeat with other instances
      // is told apart. The first record wins; a claim is completed by whoever finishes it (a claim
      // outlives its execution: the inference machine times out before the claim expires).
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: predictionKey(record.id),
          UpdateExpression:
            'SET #type = :type, #status = :completed, ensemble = :ensemble, createdAt = :createdAt, #record = :record REMOVE claimToken, expiresAt',
          ConditionExpression: 'attribute_not_exists(pk) OR #status = :inProgress',
          ExpressionAttributeNames: { '#type': 'type', '#status': 'status', '#record': 'record' },
          ExpressionAttributeValues: {
            ':type': 'prediction',
            ':completed': COMPLETED,
            ':inProgress': IN_PROGRESS,
            ':ensemble': record.ensemble,
            ':createdAt': record.createdAt,
            ':record': record,
          },
        }),
      );
      return { record, created: true };
    } catch (err) {
      if (conditionFailed(err)) {
        const existing = await this.getPrediction(record.id);
        if (existing) return { record: existing, created: false };
      }
      throw this.fail(`storing prediction ${record.id}`, err);
    }
  }

  async getPrediction(id: string): Promise<PredictionRecord | undefined> {
    const entry = await this.getEntry(id);
    return entry?.state === 'completed' ? entry.record : undefined;
  }

  async getEntry(id: string): Promise<IdEntry | undefined> {
    let item: Record<string, unknown> | undefined;
    try {
      const out = await this.client.send(
        new GetCommand({ TableName: this.table, Key: predictionKey(id), ConsistentRead: true }),
      );
      item = out.Item;
    } catch (err) {
      throw this.fail(`reading prediction ${id}`, err);
    }
    if (!item) return undefined;
    const requestHash = typeof item.requestHash === 'string' ? item.requestHash : undefined;
    // Records written before claims existed have a record and no status.
    if (item.record) return { state: 'completed', record: item.record as PredictionRecord, requestHash };
    return {
      state: 'in-progress',
      ensemble: String(item.ensemble),
      requestHash: requestHash ?? '',
      expiresAt: Number(item.expiresAt),
    };
  }

  async claim(
    claim: Claim,
    nowMs: number,
  ): Promise<{ claimed: true } | { claimed: false; existing?: IdEntry }> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...predictionKey(claim.id),
            type: 'prediction',
            status: IN_PROGRESS,
            ensemble: claim.ensemble,
            requestHash: claim.requestHash,
            claimToken: claim.token,
            expiresAt: claim.expiresAt,
          },
          ConditionExpression: 'attribute_not_exists(pk) OR (#status = :inProgress AND expiresAt < :now)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':inProgress': IN_PROGRESS, ':now': nowMs },
        }),
      );
      return { claimed: true };
    } catch (err) {
      if (!conditionFailed(err)) throw this.fail(`claiming id ${claim.id}`, err);
    }
    return { claimed: false, existing: await this.getEntry(claim.id) };
  }

  async release(id: string, token: string): Promise<void> {
    try {
      await this.client.send(
        new DeleteCommand({
          TableName: this.table,
          Key: predictionKey(id),
          ConditionExpression: 'claimToken = :token AND #status = :inProgress',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':token': token, ':inProgress': IN_PROGRESS },
        }),
      );
    } catch (err) {
      // Completed or taken over meanwhile: then it is not ours to drop.
      if (!conditionFailed(err)) throw this.fail(`releasing id ${id}`, err);
    }
  }

  private fail(what: string, err: unknown): UpstreamError {
    return new UpstreamError(`${what} in table ${this.table} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
