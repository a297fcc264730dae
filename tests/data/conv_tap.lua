-- tshark Lua listener printing, per frame counted by the TCP/UDP conversation taps, the endpoints and the
-- frame length: exactly what "tshark -z conv,tcp -z conv,udp" aggregates, but with exact byte counts
-- (the conv tables round bytes to kB). ICMP error payloads are not queued to these taps, as in conv.
local function listen(name)
  local tap = Listener.new(name)
  function tap.packet(pinfo, tvb, data)
    print(string.format("%s\t%s\t%d\t%s\t%d\t%d", name, tostring(pinfo.net_src), pinfo.src_port,
                        tostring(pinfo.net_dst), pinfo.dst_port, pinfo.len))
  end
end
listen("tcp")
listen("udp")
