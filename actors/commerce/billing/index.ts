// Billing: the Postgres ledger (a MessageConsumer of type `billing`), its transactional outbox and relay.
export { type BillingOutcome, billingSource, parseCommand } from "./commands.ts";
export { chargesByOrder, type LedgerReport, ledgerInvariants } from "./invariants.ts";
export {
  type Account,
  type AccountSet,
  type AccountSetRecorder,
  BillingLedger,
  type BillingLedgerOptions,
  type PruneSchedule,
} from "./ledger.ts";
export { BillingOutboxRelay, type BillingRelayOptions } from "./outbox.ts";
export { type BillingSql, type BillingTx, migrateBilling, SystemAccounts } from "./schema.ts";
