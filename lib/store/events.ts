// What a holder of the lock changed, as the wake-up layer tells other
// processes and queues: the store's one export that lies below it.

/** What a holder changed, for the wake-ups of other processes. */
export interface StoreEvents {
  /** Items became available: appended, or returned from a consumer that is gone. */
  added: boolean;
  /** Items were handed out (room for a put waiting at maxSize). */
  taken: boolean;
  /** The acknowledged prefix moved (for join). */
  acknowledged: boolean;
}
