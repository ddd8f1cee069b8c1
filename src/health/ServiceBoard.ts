/**
 * The running service's last word about itself (`ServiceReport`), kept for those who ask between two turns of
 * its loop (`/readyz`, the metrics) and told to those who follow it (the metrics textfile). The service sets
 * it; setting never waits for a reader.
 */
import { Effect, SubscriptionRef } from "effect"
import type { ServiceReport } from "./Readiness.js"

export class ServiceBoard extends Effect.Service<ServiceBoard>()("lxd-image-server/ServiceBoard", {
  effect: Effect.gen(function* () {
    const latest = yield* SubscriptionRef.make<ServiceReport | undefined>(undefined)
    return {
      report: (r: ServiceReport) => SubscriptionRef.set(latest, r),
      /** The last report, or undefined before the first. */
      latest: SubscriptionRef.get(latest),
      /** The reports from now on (the current one first). */
      changes: latest.changes
    } as const
  })
}) {}
