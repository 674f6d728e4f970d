-- wrk script of bench/scale.sh: GET a manifest by a random tag of
-- t000001..tCOUNT, so that the requests spread over every tag.
-- Usage: wrk ... -s bench/scale-tags.lua URL -- /v2/NAME/manifests COUNT
local prefix, count

function init(args)
    prefix = args[1]
    count = tonumber(args[2])
    -- Each thread has its own Lua state: seed each differently.
    local address = tostring({}):match("0x(%x+)") or "0"
    math.randomseed(os.time() + tonumber(address, 16) % 1000003)
end

function request()
    return wrk.format("GET", string.format("%s/t%06d", prefix, math.random(count)))
end
