/** Release version of every binary; scripts/package-agent.sh stamps the tarball with it. */
export const VERSION = '0.1.0';
