import { describe, expect, it } from "@effect/vitest"
import { Either, Option } from "effect"
import { parseImageYaml, withAliases } from "../../src/tree/ImageYaml.js"

describe("parseImageYaml", () => {
  it("takes lxd-imagebuilder's keys: release aliases as a comma-delimited string or a list, requirement values as strings", () => {
    const parsed = parseImageYaml(
      "aliases: [stable, Debian/Current]\nrelease_aliases:\n  bookworm: 12, stable\n  trixie: [13]\ndistro_name: Debian GNU/Linux\nrelease_title: '12 (bookworm)'\nrequirements:\n  secureboot: false\n  cgroup: v2\n  nesting: 'true'\ndescription: Debian, tuned\n"
    )
    expect(parsed).toEqual(
      Either.right({
        aliases: ["stable", "Debian/Current"],
        release_aliases: { bookworm: ["12", "stable"], trixie: ["13"] },
        distro_name: "Debian GNU/Linux",
        release_title: "12 (bookworm)",
        requirements: { secureboot: "false", cgroup: "v2", nesting: "true" },
        description: "Debian, tuned"
      })
    )
    expect(parseImageYaml("")).toEqual(Either.right({}))
  })
  it("refuses YAML that does not parse, wrong types, aliases clients would split, and unknown keys, saying where", () => {
    expect(parseImageYaml("aliases: [")).toEqual(Either.left(expect.stringMatching(/^not valid YAML: /)))
    expect(parseImageYaml("- a\n- b\n")).toEqual(Either.left("not a YAML mapping"))
    expect(parseImageYaml("aliases: stable")).toEqual(Either.left(expect.stringMatching(/^aliases: /)))
    expect(parseImageYaml("aliases: ['a,b']")).toEqual(Either.left(expect.stringMatching(/^aliases\.0: an alias of .*no commas/)))
    expect(parseImageYaml("release_aliases:\n  bookworm: 12, x y\n")).toEqual(Either.left(expect.stringMatching(/^release_aliases\.bookworm/)))
    expect(parseImageYaml("requirements:\n  secureboot: [false]\n")).toEqual(Either.left(expect.stringMatching(/^requirements\.secureboot/)))
    expect(parseImageYaml("distro_name: ''")).toEqual(Either.left(expect.stringMatching(/^distro_name: /)))
    expect(parseImageYaml("alias: [stable]")).toEqual(Either.left(expect.stringMatching(/^alias: /)))
  })
})

describe("withAliases", () => {
  it("adds the aliases not listed yet, keeping the rest of the file as written", () => {
    expect(withAliases("", ["a", "b"])).toEqual(Either.right({ text: "aliases:\n  - a\n  - b\n", added: ["a", "b"] }))
    expect(withAliases("# mine\naliases: [a] # first\ndistro_name: X\n", ["A", "b", "b"])).toEqual(
      Either.right({ text: "# mine\naliases: [ a, b ] # first\ndistro_name: X\n", added: ["b"] })
    )
    expect(withAliases("aliases:\n  - a\n  # keep\n  - b\n", ["c"])).toEqual(Either.right({ text: "aliases:\n  - a\n  # keep\n  - b\n  - c\n", added: ["c"] }))
    expect(withAliases("distro_name: X\n", ["c"])).toEqual(Either.right({ text: "distro_name: X\naliases:\n  - c\n", added: ["c"] }))
  })

  it("changes nothing when every alias is there", () => {
    const text = "aliases: [a, b]\n"
    expect(withAliases(text, ["b", "A"])).toEqual(Either.right({ text, added: [] }))
  })

  it("refuses a file that is not an image.yaml, or an alias that is not one", () => {
    expect(Either.getLeft(withAliases("bogus: 1\n", ["a"]))).toEqual(Option.some(expect.stringContaining("bogus: is unexpected")))
    expect(Either.getLeft(withAliases("", ["no blanks"]))).toEqual(Option.some(expect.stringContaining("aliases.0: an alias of")))
  })
})
