/**
 * Test helpers for HTTP stores, Node only: a real nginx on a loopback port serving a directory. Other packages'
 * tests import it as `@q/http/testing`; nothing in the store itself depends on it.
 */
export { startNginx, type NginxOptions, type NginxServer, type AccessLogEntry } from './nginx-server.js';
export { makeTestCertificates, type TestCertificates } from './test-certificates.js';
