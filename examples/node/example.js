// Produces and consumes with liboncelog from Node.js through koffi: a second
// runtime embedding the library through its own FFI, declaring the few functions
// it needs itself instead of reading oncelog.h.
//
//   ONCELOG_LIB=/usr/local/lib/liboncelog.so.0 node example.js STORE_DIR [COUNT]
//
// Exits 0 after reading back exactly what it wrote, 1 otherwise.
'use strict';

const koffi = require('koffi');

const lib = koffi.load(process.env.ONCELOG_LIB || 'liboncelog.so.0');

// Opaque handles and the calls this example uses, as the C API declares them.
koffi.opaque('oncelog_error_t');
koffi.opaque('oncelog_conf_t');
koffi.opaque('oncelog_store_t');
koffi.opaque('oncelog_producer_t');
koffi.opaque('oncelog_consumer_t');
koffi.opaque('oncelog_message_t');
const TopicPartition = koffi.struct('oncelog_topic_partition_t', {
  topic: 'const char *',
  partition: 'int32_t',
});

const api = {
  version: lib.func('const char *oncelog_version(void)'),
  errName: lib.func('const char *oncelog_err_name(int32_t code)'),
  errorMessage: lib.func('const char *oncelog_error_message(const oncelog_error_t *error)'),
  errorDestroy: lib.func('void oncelog_error_destroy(oncelog_error_t *error)'),
  confNew: lib.func('oncelog_conf_t *oncelog_conf_new(void)'),
  confSet: lib.func('int32_t oncelog_conf_set(oncelog_conf_t *conf, const char *key, const char *value, _Out_ oncelog_error_t **err_out)'),
  confDestroy: lib.func('void oncelog_conf_destroy(oncelog_conf_t *conf)'),
  storeOpen: lib.func('int32_t oncelog_store_open(const char *path, const oncelog_conf_t *conf, _Out_ oncelog_store_t **store_out, _Out_ oncelog_error_t **err_out)'),
  storeDestroy: lib.func('void oncelog_store_destroy(oncelog_store_t *store)'),
  topicCreate: lib.func('int32_t oncelog_topic_create(oncelog_store_t *store, const char *topic, int32_t partitions, const oncelog_conf_t *conf, _Out_ oncelog_error_t **err_out)'),
  producerNew: lib.func('int32_t oncelog_producer_new(oncelog_store_t *store, const oncelog_conf_t *conf, _Out_ oncelog_producer_t **producer_out, _Out_ oncelog_error_t **err_out)'),
  producerDestroy: lib.func('void oncelog_producer_destroy(oncelog_producer_t *producer)'),
  produce: lib.func('int32_t oncelog_produce(oncelog_producer_t *producer, const char *topic, int32_t partition, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len, _Out_ int32_t *partition_out, _Out_ int64_t *offset_out, _Out_ oncelog_error_t **err_out)'),
  consumerNew: lib.func('int32_t oncelog_consumer_new(oncelog_store_t *store, const oncelog_conf_t *conf, _Out_ oncelog_consumer_t **consumer_out, _Out_ oncelog_error_t **err_out)'),
  consumerAssign: lib.func('int32_t oncelog_consumer_assign(oncelog_consumer_t *consumer, const oncelog_topic_partition_t *partitions, size_t count, _Out_ oncelog_error_t **err_out)'),
  consumerPoll: lib.func('int32_t oncelog_consumer_poll(oncelog_consumer_t *consumer, int32_t timeout_ms, _Out_ oncelog_message_t **message_out, _Out_ oncelog_error_t **err_out)'),
  consumerClose: lib.func('int32_t oncelog_consumer_close(oncelog_consumer_t *consumer, _Out_ oncelog_error_t **err_out)'),
  consumerDestroy: lib.func('void oncelog_consumer_destroy(oncelog_consumer_t *consumer)'),
  messageOffset: lib.func('int64_t oncelog_message_offset(const oncelog_message_t *message)'),
  messageKey: lib.func('const void *oncelog_message_key(const oncelog_message_t *message, _Out_ size_t *len_out)'),
  messageValue: lib.func('const void *oncelog_message_value(const oncelog_message_t *message, _Out_ size_t *len_out)'),
  messageDestroy: lib.func('void oncelog_message_destroy(oncelog_message_t *message)'),
};

const ONCELOG_ERR_OK = 0;
const ONCELOG_ERR_TOPIC_EXISTS = 4;

// Calls an oncelog function whose last argument is err_out; throws on failure
// (after freeing the error object). Returns the code.
function call(name, fn, args, allowed = []) {
  const err = [null];
  const code = fn(...args, err);
  if (code !== ONCELOG_ERR_OK) {
    const message = err[0] ? api.errorMessage(err[0]) : '';
    api.errorDestroy(err[0]);
    if (!allowed.includes(code)) {
      throw new Error(`${name}: ${api.errName(code)}: ${message}`);
    }
  }
  return code;
}

// A borrowed (pointer, length) view copied into a Buffer; null stays null.
function bytes(accessor, message) {
  const len = [0];
  const ptr = accessor(message, len);
  return ptr === null ? null : Buffer.from(koffi.decode(ptr, 'uint8_t', len[0]));
}

function main() {
  const dir = process.argv[2];
  const count = Number(process.argv[3] || 100);
  if (!dir) {
    console.error('usage: node example.js STORE_DIR [COUNT]');
    process.exit(2);
  }
  console.log(`liboncelog ${api.version()}`);

  const store = [null];
  call('oncelog_store_open', api.storeOpen, [dir, null, store]);
  call('oncelog_topic_create', api.topicCreate, [store[0], 'node', 1, null], [ONCELOG_ERR_TOPIC_EXISTS]);

  const producer = [null];
  call('oncelog_producer_new', api.producerNew, [store[0], null, producer]);
  const sent = [];
  for (let i = 0; i < count; i++) {
    const key = Buffer.from(`node-${i % 7}`);
    const value = Buffer.from(`hello from node #${i}`);
    const partition = [-1];
    const offset = [-1];
    call('oncelog_produce', api.produce,
      [producer[0], 'node', 0, key, key.length, value, value.length, partition, offset]);
    sent.push({ offset: Number(offset[0]), key, value });
  }
  api.producerDestroy(producer[0]);

  const conf = api.confNew();
  call('oncelog_conf_set', api.confSet, [conf, 'auto.offset.reset', 'earliest']);
  const consumer = [null];
  call('oncelog_consumer_new', api.consumerNew, [store[0], conf, consumer]);
  api.confDestroy(conf);
  call('oncelog_consumer_assign', api.consumerAssign, [consumer[0], [{ topic: 'node', partition: 0 }], 1]);

  const first = sent[0].offset;
  let received = 0;
  for (;;) {
    const message = [null];
    call('oncelog_consumer_poll', api.consumerPoll, [consumer[0], 1000, message]);
    if (message[0] === null) break;
    const offset = Number(api.messageOffset(message[0]));
    const key = bytes(api.messageKey, message[0]);
    const value = bytes(api.messageValue, message[0]);
    api.messageDestroy(message[0]);
    if (offset < first) continue; // an earlier run's records
    const want = sent[offset - first];
    if (!want || !key.equals(want.key) || !value.equals(want.value)) {
      throw new Error(`offset ${offset}: got ${key}=${value}, expected ${want && want.key}=${want && want.value}`);
    }
    received++;
  }
  call('oncelog_consumer_close', api.consumerClose, [consumer[0]]);
  api.consumerDestroy(consumer[0]);
  api.storeDestroy(store[0]);
  if (received !== count) {
    throw new Error(`read back ${received} of ${count} records`);
  }
  console.log(`node: produced and consumed ${count} records`);
}

try {
  main();
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
