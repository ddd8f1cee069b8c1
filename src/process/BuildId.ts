/**
 * Which build of the program this is: a digest of the sources and the locked dependencies it was bundled from,
 * set by scripts/bundle.mjs. Undefined when it runs from the sources or from tsc's output, which cannot say.
 */
declare const LXD_IMAGE_SERVER_BUILD: string | undefined

export const buildId: string | undefined = typeof LXD_IMAGE_SERVER_BUILD === "string" ? LXD_IMAGE_SERVER_BUILD : undefined
