import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { parseImageYaml } from "../../src/tree/ImageYaml.js"

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
