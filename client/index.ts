// vitess-do/client: the SDK entry point. The whole public surface is declared in api.ts.

export {
  createClient,
  VitessError,
  type BatchOptions,
  type ChangeEvent,
  type ChangeRow,
  type Client,
  type ClientConfig,
  type ErrorCode,
  type InStatement,
  type InValue,
  type KeyspaceView,
  type Params,
  type ResultSet,
  type Row,
  type ShardView,
  type Statement,
  type TopologyView,
  type Transaction,
  type Value,
  type VitessErrorOptions,
  type VStream,
  type VStreamOptions,
} from "./api.ts";
export type { WorkflowRecord, WorkflowShard, WorkflowState } from "../contract/workflow-record.ts";
export {
  newSubscriptionReaderState,
  readSubscriptionBatch,
  type SubscriptionBatchResult,
  type SubscriptionReaderState,
  type SubscriptionTransaction,
} from "./subscription.ts";
