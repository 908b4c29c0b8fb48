// Kept equal to package.json's version; test/cli.test.ts checks that they agree.
export const VERSION = '0.5.0'
