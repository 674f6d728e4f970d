-- wrk script of bench/scale.sh: GET a manifest by a random tag of
-- t000001..tCOUNT, so that the requests spread over every tag; with a third
-- argument `sequential`, each thread walks the tags in order instead (the
-- first from the first, the second from the middle, round and round), so
-- that a warm-up touches every tag.
-- Usage: wrk ... -s bench/scale-tags.lua URL -- /v2/NAME/manifests COUNT [sequential]
local prefix, count, sequential, next_tag
local threads = 0

function setup(thread)
    thread:set("id", threads)
    threads = threads + 1
end

function init(args)
    prefix = args[1]
    count = tonumber(args[2])
    sequential = args[3] == "sequential"
    -- Each thread has its own Lua state: seed each differently.
    local address = tostring({}):match("0x(%x+)") or "0"
    math.randomseed(os.time() + tonumber(address, 16) % 1000003)
    -- Sequential walks start apart: thread 0 at the first, thread 1 at the
    -- middle (wrk runs two threads here).
    next_tag = (tonumber(id) or 0) * math.floor(count / 2) % count + 1
end

function request()
    local tag = math.random(count)
    if sequential then
        tag = next_tag
        next_tag = next_tag % count + 1
    end
    return wrk.format("GET", string.format("%s/t%06d", prefix, tag))
end
