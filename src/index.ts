// What `import ... from 'cairn'` gives: the client library. (The server side is
// run with `cairn serve`; nothing of it is exported here.)
export * from './client/index.js';
