-- wrk script of bench/store-size.sh: GET the manifest `latest` of image `app`
-- in a random repository of r000001..rCOUNT, so that the requests spread over
-- every repository; with a third argument `sequential`, each thread walks
-- them in order instead (as bench/scale-tags.lua does).
-- Usage: wrk ... -s bench/scale-repos.lua URL -- PROJECT COUNT [sequential]
local project, count, sequential, next_repo
local threads = 0

function setup(thread)
    thread:set("id", threads)
    threads = threads + 1
end

function init(args)
    project = args[1]
    count = tonumber(args[2])
    sequential = args[3] == "sequential"
    local address = tostring({}):match("0x(%x+)") or "0"
    math.randomseed(os.time() + tonumber(address, 16) % 1000003)
    -- Sequential walks start apart: thread 0 at the first, thread 1 at the
    -- middle (wrk runs two threads here).
    next_repo = (tonumber(id) or 0) * math.floor(count / 2) % count + 1
end

function request()
    local repo = math.random(count)
    if sequential then
        repo = next_repo
        next_repo = next_repo % count + 1
    end
    return wrk.format("GET", string.format("/v2/%s/r%06d/app/manifests/latest", project, repo))
end
