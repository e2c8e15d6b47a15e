// perq's public API: exports only.
export { Queue } from './queue.js';
export type {
  PutOptions,
  GetOptions,
  GetManyOptions,
  PeekOptions,
  NackOptions,
  Entry,
  EntryRef,
  QueueStats,
  ConsumerStats,
} from './queue.js';
export { QueueError, Empty, Full } from './errors.js';
export type { QueueErrorCode } from './errors.js';
export type { QueueOptions, FsyncMode, LockingMode, OnCorrupt } from './options.js';
export type { RepairReport } from './store/store.js';
export type { QuarantinedStretch } from './store/repair.js';
export type { Serializer, SerializerName, SerializerOption } from './serializers.js';
export {
  taskQueue,
  type TaskQueue,
  type PushResult,
  type TaskQueueOptions,
  type TaskStorageOptions,
  type TaskHandler,
  type TaskContext,
  type TaskLogLevel,
  type DeadLetter,
} from './task/queue.js';
