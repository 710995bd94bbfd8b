//! Helpers shared by the end-to-end tests: start real `shoal-node` (and `redis-server`)
//! processes on port 0 and talk to them.
