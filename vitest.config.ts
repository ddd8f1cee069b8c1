import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    // One file at a time: the watch tests measure settle windows, the e2e tests start an LXD daemon and map
    // names in /etc/hosts, and the package test builds with every core; none of them may crowd another.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
})
