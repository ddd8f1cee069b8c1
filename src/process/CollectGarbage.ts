/**
 * V8's full collection, if this Node lets a program ask for it (it does, through this flag, since long); without
 * it, V8 collects in its own time. Asked for at first use, not when a module loads: V8 keeps the flags in force
 * when the build made its code cache, and a cache made with --expose-gc set is refused by every later start (0.3 s
 * more for every command). Used by the service after a full scan and by the file watcher's thread once ready.
 */
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

let gc: (() => void) | null | undefined

export const collectGarbage = (): void => {
  if (gc === undefined) {
    try {
      setFlagsFromString("--expose-gc")
      gc = runInNewContext("gc") as () => void
    } catch {
      gc = null
    }
  }
  gc?.()
}
