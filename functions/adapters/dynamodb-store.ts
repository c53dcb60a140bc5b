import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { PredictionRecord } from '../core/combine.js';
import { UpstreamError } from '../core/errors.js';
import type { PredictionStore, PutResult } from '../core/ports.js';

/** Key layout of the single table: predictions live under `PRED#<id>`. */
export const predictionKey = (id: string) => ({ pk: `PRED#${id}`, sk: 'PRED' });

/** Prediction records in one DynamoDB table (partition key `pk`, sort key `sk`). */
export class DynamoPredictionStore implements PredictionStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async putPrediction(record: PredictionRecord): Promise<PutResult> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...predictionKey(record.id),
            type: 'prediction',
            ensemble: record.ensemble,
            createdAt: record.createdAt,
            record,
          },
          // A client id is idempotent: the first write wins, concurrent repeats never overwrite.
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return { record, created: true };
    } catch (err) {
      if (
        err instanceof ConditionalCheckFailedException ||
        (err as Error).name === 'ConditionalCheckFailedException'
      ) {
        const existing = await this.getPrediction(record.id);
        if (existing) return { record: existing, created: false };
      }
      throw new UpstreamError(
        `storing prediction ${record.id} in table ${this.table} failed: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  async getPrediction(id: string): Promise<PredictionRecord | undefined> {
    try {
      const out = await this.client.send(
        new GetCommand({ TableName: this.table, Key: predictionKey(id), ConsistentRead: true }),
      );
      return out.Item?.record as PredictionRecord | undefined;
    } catch (err) {
      throw new UpstreamError(
        `reading prediction ${id} from table ${this.table} failed: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }
}
