/** Every configured mirror's status, read from the state each one's pusher keeps: for `mirror status`, `status` and the metrics. */
import { Effect } from "effect"
import { processAlive } from "../indexer/WriterLock.js"
import type { MirrorTarget } from "./MirrorConfig.js"
import { MirrorPush } from "./MirrorPush.js"
import { statusOf } from "./MirrorState.js"

export const readMirrorStatuses = (
  targets: ReadonlyArray<MirrorTarget>,
  stateDir: string,
  primary: { readonly generation: number; readonly at: number | null } | undefined,
  now: number
) =>
  Effect.gen(function* () {
    const pusher = yield* MirrorPush
    return yield* Effect.forEach(targets, (m) =>
      Effect.map(pusher.readState(stateDir, m.name), (s) => statusOf(m.name, s, primary, now, s.pushing !== null && processAlive(s.pushing)))
    )
  })
