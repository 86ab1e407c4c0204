// How many tasks one orchestration pass creates (all services): a
// 10,000-replica service is created in a few large writes, not one huge one.
export const CREATE_CHUNK = 5000;
