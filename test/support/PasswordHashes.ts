/** Password hashes of "abc", made with the host's `openssl passwd` (-6, -5 with rounds, -apr1, -1). */
export const password = "abc"
export const sha512 = "$6$xyz$PAKvmleneF76dJMCB7ba8K2HKOKSvc4SaCsFDIbfDYCnv235b1miMic/DW32Fag7jQfkhMyoBttnxSERDybni."
export const sha256Rounds = "$5$rounds=10000$abcdefgh$NJahiCy.19jmbDD2aRpfD6HMKM44X39..Snz1I2nvtA"
export const apr1 = "$apr1$abcdefgh$U1Uab/FJNqfjoxmZo6Iyt/"
export const md5 = "$1$xyz$rzmaHv.aP/Z0w4eY/XX2u1"
