from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_TYPE_UNSPECIFIED: _ClassVar[MessageType]
    CS_PING: _ClassVar[MessageType]
    SC_PING_REPLY: _ClassVar[MessageType]
    CS_Login: _ClassVar[MessageType]
    SC_Login_Reply: _ClassVar[MessageType]
    CS_Logout: _ClassVar[MessageType]
    SC_Closing: _ClassVar[MessageType]
    CS_NormalUpdate: _ClassVar[MessageType]
    SC_NormalUpdate: _ClassVar[MessageType]
    CS_ObserverUpdate: _ClassVar[MessageType]
    CS_QUERY: _ClassVar[MessageType]
    SC_QUERY_REPLY: _ClassVar[MessageType]
    CS_GameMessage: _ClassVar[MessageType]
    SC_GameMessage: _ClassVar[MessageType]
    GRID_HELLO: _ClassVar[MessageType]
    GRID_SPAWN_NODE: _ClassVar[MessageType]
    GRID_NODE_READY: _ClassVar[MessageType]
    GRID_CLOSE_NODE: _ClassVar[MessageType]
    ADMIN_SHUTDOWN: _ClassVar[MessageType]
    ADMIN_RELOAD: _ClassVar[MessageType]
    ADMIN_RELOAD_REPLY: _ClassVar[MessageType]
    GRID_CLOSING: _ClassVar[MessageType]
    GRID_MAP_REQUEST: _ClassVar[MessageType]
    GRID_MAP_REPORT: _ClassVar[MessageType]
    ADMIN_COMMAND: _ClassVar[MessageType]
    ADMIN_COMMAND_REPLY: _ClassVar[MessageType]
MESSAGE_TYPE_UNSPECIFIED: MessageType
CS_PING: MessageType
SC_PING_REPLY: MessageType
CS_Login: MessageType
SC_Login_Reply: MessageType
CS_Logout: MessageType
SC_Closing: MessageType
CS_NormalUpdate: MessageType
SC_NormalUpdate: MessageType
CS_ObserverUpdate: MessageType
CS_QUERY: MessageType
SC_QUERY_REPLY: MessageType
CS_GameMessage: MessageType
SC_GameMessage: MessageType
GRID_HELLO: MessageType
GRID_SPAWN_NODE: MessageType
GRID_NODE_READY: MessageType
GRID_CLOSE_NODE: MessageType
ADMIN_SHUTDOWN: MessageType
ADMIN_RELOAD: MessageType
ADMIN_RELOAD_REPLY: MessageType
GRID_CLOSING: MessageType
GRID_MAP_REQUEST: MessageType
GRID_MAP_REPORT: MessageType
ADMIN_COMMAND: MessageType
ADMIN_COMMAND_REPLY: MessageType

class Seal(_message.Message):
    __slots__ = ("time", "nonce", "mac")
    TIME_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    time: float
    nonce: bytes
    mac: bytes
    def __init__(self, time: _Optional[float] = ..., nonce: _Optional[bytes] = ..., mac: _Optional[bytes] = ...) -> None: ...

class AgentState(_message.Message):
    __slots__ = ("asset_file", "rx", "y", "rz", "facing", "ccs", "anim", "nickname", "scaling")
    ASSET_FILE_FIELD_NUMBER: _ClassVar[int]
    RX_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    RZ_FIELD_NUMBER: _ClassVar[int]
    FACING_FIELD_NUMBER: _ClassVar[int]
    CCS_FIELD_NUMBER: _ClassVar[int]
    ANIM_FIELD_NUMBER: _ClassVar[int]
    NICKNAME_FIELD_NUMBER: _ClassVar[int]
    SCALING_FIELD_NUMBER: _ClassVar[int]
    asset_file: str
    rx: int
    y: int
    rz: int
    facing: int
    ccs: str
    anim: str
    nickname: str
    scaling: int
    def __init__(self, asset_file: _Optional[str] = ..., rx: _Optional[int] = ..., y: _Optional[int] = ..., rz: _Optional[int] = ..., facing: _Optional[int] = ..., ccs: _Optional[str] = ..., anim: _Optional[str] = ..., nickname: _Optional[str] = ..., scaling: _Optional[int] = ...) -> None: ...

class WorldEdit(_message.Message):
    __slots__ = ("kind", "params", "author", "seq")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    kind: str
    params: _containers.ScalarMap[str, str]
    author: str
    seq: int
    def __init__(self, kind: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ..., author: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class AgentData(_message.Message):
    __slots__ = ("data", "creations", "env")
    DATA_FIELD_NUMBER: _ClassVar[int]
    CREATIONS_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    data: AgentState
    creations: _containers.RepeatedCompositeFieldContainer[WorldEdit]
    env: _containers.RepeatedCompositeFieldContainer[WorldEdit]
    def __init__(self, data: _Optional[_Union[AgentState, _Mapping]] = ..., creations: _Optional[_Iterable[_Union[WorldEdit, _Mapping]]] = ..., env: _Optional[_Iterable[_Union[WorldEdit, _Mapping]]] = ...) -> None: ...

class AgentTable(_message.Message):
    __slots__ = ("slots", "masks", "name_shared", "name_rest_len", "name_rest", "asset_ids", "asset_text", "rx", "y", "rz", "facing", "ccs_ids", "ccs_text", "anim_ids", "anim_text", "nickname", "scaling")
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    MASKS_FIELD_NUMBER: _ClassVar[int]
    NAME_SHARED_FIELD_NUMBER: _ClassVar[int]
    NAME_REST_LEN_FIELD_NUMBER: _ClassVar[int]
    NAME_REST_FIELD_NUMBER: _ClassVar[int]
    ASSET_IDS_FIELD_NUMBER: _ClassVar[int]
    ASSET_TEXT_FIELD_NUMBER: _ClassVar[int]
    RX_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    RZ_FIELD_NUMBER: _ClassVar[int]
    FACING_FIELD_NUMBER: _ClassVar[int]
    CCS_IDS_FIELD_NUMBER: _ClassVar[int]
    CCS_TEXT_FIELD_NUMBER: _ClassVar[int]
    ANIM_IDS_FIELD_NUMBER: _ClassVar[int]
    ANIM_TEXT_FIELD_NUMBER: _ClassVar[int]
    NICKNAME_FIELD_NUMBER: _ClassVar[int]
    SCALING_FIELD_NUMBER: _ClassVar[int]
    slots: _containers.RepeatedScalarFieldContainer[int]
    masks: _containers.RepeatedScalarFieldContainer[int]
    name_shared: _containers.RepeatedScalarFieldContainer[int]
    name_rest_len: _containers.RepeatedScalarFieldContainer[int]
    name_rest: str
    asset_ids: _containers.RepeatedScalarFieldContainer[int]
    asset_text: _containers.RepeatedScalarFieldContainer[str]
    rx: _containers.RepeatedScalarFieldContainer[int]
    y: _containers.RepeatedScalarFieldContainer[int]
    rz: _containers.RepeatedScalarFieldContainer[int]
    facing: _containers.RepeatedScalarFieldContainer[int]
    ccs_ids: _containers.RepeatedScalarFieldContainer[int]
    ccs_text: _containers.RepeatedScalarFieldContainer[str]
    anim_ids: _containers.RepeatedScalarFieldContainer[int]
    anim_text: _containers.RepeatedScalarFieldContainer[str]
    nickname: _containers.RepeatedScalarFieldContainer[str]
    scaling: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, slots: _Optional[_Iterable[int]] = ..., masks: _Optional[_Iterable[int]] = ..., name_shared: _Optional[_Iterable[int]] = ..., name_rest_len: _Optional[_Iterable[int]] = ..., name_rest: _Optional[str] = ..., asset_ids: _Optional[_Iterable[int]] = ..., asset_text: _Optional[_Iterable[str]] = ..., rx: _Optional[_Iterable[int]] = ..., y: _Optional[_Iterable[int]] = ..., rz: _Optional[_Iterable[int]] = ..., facing: _Optional[_Iterable[int]] = ..., ccs_ids: _Optional[_Iterable[int]] = ..., ccs_text: _Optional[_Iterable[str]] = ..., anim_ids: _Optional[_Iterable[int]] = ..., anim_text: _Optional[_Iterable[str]] = ..., nickname: _Optional[_Iterable[str]] = ..., scaling: _Optional[_Iterable[int]] = ...) -> None: ...

class Ticket(_message.Message):
    __slots__ = ("user", "node_id", "node_key", "expires", "gateway", "mac", "role", "issued")
    USER_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ISSUED_FIELD_NUMBER: _ClassVar[int]
    user: str
    node_id: int
    node_key: str
    expires: float
    gateway: str
    mac: bytes
    role: str
    issued: float
    def __init__(self, user: _Optional[str] = ..., node_id: _Optional[int] = ..., node_key: _Optional[str] = ..., expires: _Optional[float] = ..., gateway: _Optional[str] = ..., mac: _Optional[bytes] = ..., role: _Optional[str] = ..., issued: _Optional[float] = ...) -> None: ...

class Ping(_message.Message):
    __slots__ = ("csk", "sk", "worldpath")
    CSK_FIELD_NUMBER: _ClassVar[int]
    SK_FIELD_NUMBER: _ClassVar[int]
    WORLDPATH_FIELD_NUMBER: _ClassVar[int]
    csk: str
    sk: str
    worldpath: str
    def __init__(self, csk: _Optional[str] = ..., sk: _Optional[str] = ..., worldpath: _Optional[str] = ...) -> None: ...

class PingReply(_message.Message):
    __slots__ = ("csk", "sk", "is_grid", "saved")
    CSK_FIELD_NUMBER: _ClassVar[int]
    SK_FIELD_NUMBER: _ClassVar[int]
    IS_GRID_FIELD_NUMBER: _ClassVar[int]
    SAVED_FIELD_NUMBER: _ClassVar[int]
    csk: str
    sk: str
    is_grid: bool
    saved: SavedAgent
    def __init__(self, csk: _Optional[str] = ..., sk: _Optional[str] = ..., is_grid: _Optional[bool] = ..., saved: _Optional[_Union[SavedAgent, _Mapping]] = ...) -> None: ...

class SavedAgent(_message.Message):
    __slots__ = ("worldpath", "x", "y", "z", "facing", "asset_file", "nickname", "ccs", "anim", "scaling")
    WORLDPATH_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    FACING_FIELD_NUMBER: _ClassVar[int]
    ASSET_FILE_FIELD_NUMBER: _ClassVar[int]
    NICKNAME_FIELD_NUMBER: _ClassVar[int]
    CCS_FIELD_NUMBER: _ClassVar[int]
    ANIM_FIELD_NUMBER: _ClassVar[int]
    SCALING_FIELD_NUMBER: _ClassVar[int]
    worldpath: str
    x: float
    y: float
    z: float
    facing: int
    asset_file: str
    nickname: str
    ccs: str
    anim: str
    scaling: int
    def __init__(self, worldpath: _Optional[str] = ..., x: _Optional[float] = ..., y: _Optional[float] = ..., z: _Optional[float] = ..., facing: _Optional[int] = ..., asset_file: _Optional[str] = ..., nickname: _Optional[str] = ..., ccs: _Optional[str] = ..., anim: _Optional[str] = ..., scaling: _Optional[int] = ...) -> None: ...

class Login(_message.Message):
    __slots__ = ("sk", "worldpath", "x", "y", "z", "is_observer", "client_uid", "client_version", "csk", "unreachable")
    SK_FIELD_NUMBER: _ClassVar[int]
    WORLDPATH_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    IS_OBSERVER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_UID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CSK_FIELD_NUMBER: _ClassVar[int]
    UNREACHABLE_FIELD_NUMBER: _ClassVar[int]
    sk: str
    worldpath: str
    x: float
    y: float
    z: float
    is_observer: bool
    client_uid: str
    client_version: int
    csk: str
    unreachable: str
    def __init__(self, sk: _Optional[str] = ..., worldpath: _Optional[str] = ..., x: _Optional[float] = ..., y: _Optional[float] = ..., z: _Optional[float] = ..., is_observer: _Optional[bool] = ..., client_uid: _Optional[str] = ..., client_version: _Optional[int] = ..., csk: _Optional[str] = ..., unreachable: _Optional[str] = ...) -> None: ...

class LoginReply(_message.Message):
    __slots__ = ("worldpath", "x", "y", "z", "gk", "gjid", "gid", "gx", "gy", "gsize", "is_grid", "role", "online_user_num", "start_time", "visits_since_start", "server_version", "client_version", "refused", "reason", "sk", "ticket", "csk", "radius")
    WORLDPATH_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    GK_FIELD_NUMBER: _ClassVar[int]
    GJID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    GX_FIELD_NUMBER: _ClassVar[int]
    GY_FIELD_NUMBER: _ClassVar[int]
    GSIZE_FIELD_NUMBER: _ClassVar[int]
    IS_GRID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ONLINE_USER_NUM_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    VISITS_SINCE_START_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    CLIENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SK_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    CSK_FIELD_NUMBER: _ClassVar[int]
    RADIUS_FIELD_NUMBER: _ClassVar[int]
    worldpath: str
    x: float
    y: float
    z: float
    gk: str
    gjid: str
    gid: int
    gx: int
    gy: int
    gsize: float
    is_grid: bool
    role: str
    online_user_num: int
    start_time: float
    visits_since_start: int
    server_version: int
    client_version: int
    refused: bool
    reason: str
    sk: str
    ticket: Ticket
    csk: str
    radius: float
    def __init__(self, worldpath: _Optional[str] = ..., x: _Optional[float] = ..., y: _Optional[float] = ..., z: _Optional[float] = ..., gk: _Optional[str] = ..., gjid: _Optional[str] = ..., gid: _Optional[int] = ..., gx: _Optional[int] = ..., gy: _Optional[int] = ..., gsize: _Optional[float] = ..., is_grid: _Optional[bool] = ..., role: _Optional[str] = ..., online_user_num: _Optional[int] = ..., start_time: _Optional[float] = ..., visits_since_start: _Optional[int] = ..., server_version: _Optional[int] = ..., client_version: _Optional[int] = ..., refused: _Optional[bool] = ..., reason: _Optional[str] = ..., sk: _Optional[str] = ..., ticket: _Optional[_Union[Ticket, _Mapping]] = ..., csk: _Optional[str] = ..., radius: _Optional[float] = ...) -> None: ...

class Logout(_message.Message):
    __slots__ = ("sk", "id")
    SK_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    sk: str
    id: int
    def __init__(self, sk: _Optional[str] = ..., id: _Optional[int] = ...) -> None: ...

class Closing(_message.Message):
    __slots__ = ("sk", "reason")
    SK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    sk: str
    reason: str
    def __init__(self, sk: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class NormalUpdate(_message.Message):
    __slots__ = ("sk", "id", "agent", "st", "ct", "recover", "dummy", "ticket")
    SK_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    ST_FIELD_NUMBER: _ClassVar[int]
    CT_FIELD_NUMBER: _ClassVar[int]
    RECOVER_FIELD_NUMBER: _ClassVar[int]
    DUMMY_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    sk: str
    id: int
    agent: AgentData
    st: int
    ct: int
    recover: _containers.RepeatedScalarFieldContainer[int]
    dummy: bool
    ticket: Ticket
    def __init__(self, sk: _Optional[str] = ..., id: _Optional[int] = ..., agent: _Optional[_Union[AgentData, _Mapping]] = ..., st: _Optional[int] = ..., ct: _Optional[int] = ..., recover: _Optional[_Iterable[int]] = ..., dummy: _Optional[bool] = ..., ticket: _Optional[_Union[Ticket, _Mapping]] = ...) -> None: ...

class NormalUpdateReply(_message.Message):
    __slots__ = ("sk", "id", "st", "ct", "agents", "ping", "creations", "env", "base", "reset", "gone", "want_full", "more")
    SK_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ST_FIELD_NUMBER: _ClassVar[int]
    CT_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    CREATIONS_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    GONE_FIELD_NUMBER: _ClassVar[int]
    WANT_FULL_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    sk: str
    id: int
    st: int
    ct: int
    agents: AgentTable
    ping: _containers.RepeatedScalarFieldContainer[int]
    creations: _containers.RepeatedCompositeFieldContainer[WorldEdit]
    env: _containers.RepeatedCompositeFieldContainer[WorldEdit]
    base: int
    reset: bool
    gone: _containers.RepeatedScalarFieldContainer[int]
    want_full: bool
    more: bool
    def __init__(self, sk: _Optional[str] = ..., id: _Optional[int] = ..., st: _Optional[int] = ..., ct: _Optional[int] = ..., agents: _Optional[_Union[AgentTable, _Mapping]] = ..., ping: _Optional[_Iterable[int]] = ..., creations: _Optional[_Iterable[_Union[WorldEdit, _Mapping]]] = ..., env: _Optional[_Iterable[_Union[WorldEdit, _Mapping]]] = ..., base: _Optional[int] = ..., reset: _Optional[bool] = ..., gone: _Optional[_Iterable[int]] = ..., want_full: _Optional[bool] = ..., more: _Optional[bool] = ...) -> None: ...

class NormalUpdateReplyOut(_message.Message):
    __slots__ = ("sk", "id", "st", "ct", "agents", "ping", "creations", "env", "base", "reset", "gone", "want_full", "more")
    SK_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ST_FIELD_NUMBER: _ClassVar[int]
    CT_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    CREATIONS_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    GONE_FIELD_NUMBER: _ClassVar[int]
    WANT_FULL_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    sk: str
    id: int
    st: int
    ct: int
    agents: bytes
    ping: _containers.RepeatedScalarFieldContainer[int]
    creations: _containers.RepeatedCompositeFieldContainer[WorldEdit]
    env: _containers.RepeatedCompositeFieldContainer[WorldEdit]
    base: int
    reset: bool
    gone: _containers.RepeatedScalarFieldContainer[int]
    want_full: bool
    more: bool
    def __init__(self, sk: _Optional[str] = ..., id: _Optional[int] = ..., st: _Optional[int] = ..., ct: _Optional[int] = ..., agents: _Optional[bytes] = ..., ping: _Optional[_Iterable[int]] = ..., creations: _Optional[_Iterable[_Union[WorldEdit, _Mapping]]] = ..., env: _Optional[_Iterable[_Union[WorldEdit, _Mapping]]] = ..., base: _Optional[int] = ..., reset: _Optional[bool] = ..., gone: _Optional[_Iterable[int]] = ..., want_full: _Optional[bool] = ..., more: _Optional[bool] = ...) -> None: ...

class ObserverUpdate(_message.Message):
    __slots__ = ("sk", "id", "st", "recover", "ticket", "x", "z")
    SK_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ST_FIELD_NUMBER: _ClassVar[int]
    RECOVER_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    sk: str
    id: int
    st: int
    recover: _containers.RepeatedScalarFieldContainer[int]
    ticket: Ticket
    x: float
    z: float
    def __init__(self, sk: _Optional[str] = ..., id: _Optional[int] = ..., st: _Optional[int] = ..., recover: _Optional[_Iterable[int]] = ..., ticket: _Optional[_Union[Ticket, _Mapping]] = ..., x: _Optional[float] = ..., z: _Optional[float] = ...) -> None: ...

class Query(_message.Message):
    __slots__ = ("csk", "sk", "fields", "forward")
    CSK_FIELD_NUMBER: _ClassVar[int]
    SK_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    FORWARD_FIELD_NUMBER: _ClassVar[int]
    csk: str
    sk: str
    fields: _containers.RepeatedScalarFieldContainer[str]
    forward: str
    def __init__(self, csk: _Optional[str] = ..., sk: _Optional[str] = ..., fields: _Optional[_Iterable[str]] = ..., forward: _Optional[str] = ...) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ("id", "jid", "worldpath", "gx", "gy", "gsize", "agents", "role", "instance")
    ID_FIELD_NUMBER: _ClassVar[int]
    JID_FIELD_NUMBER: _ClassVar[int]
    WORLDPATH_FIELD_NUMBER: _ClassVar[int]
    GX_FIELD_NUMBER: _ClassVar[int]
    GY_FIELD_NUMBER: _ClassVar[int]
    GSIZE_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    id: int
    jid: str
    worldpath: str
    gx: int
    gy: int
    gsize: float
    agents: int
    role: str
    instance: int
    def __init__(self, id: _Optional[int] = ..., jid: _Optional[str] = ..., worldpath: _Optional[str] = ..., gx: _Optional[int] = ..., gy: _Optional[int] = ..., gsize: _Optional[float] = ..., agents: _Optional[int] = ..., role: _Optional[str] = ..., instance: _Optional[int] = ...) -> None: ...

class QueryResult(_message.Message):
    __slots__ = ("systime", "uptime", "agentcount", "nodes")
    SYSTIME_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    AGENTCOUNT_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    systime: int
    uptime: float
    agentcount: int
    nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    def __init__(self, systime: _Optional[int] = ..., uptime: _Optional[float] = ..., agentcount: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ...) -> None: ...

class QueryReply(_message.Message):
    __slots__ = ("csk", "sk", "is_grid", "forward", "result")
    CSK_FIELD_NUMBER: _ClassVar[int]
    SK_FIELD_NUMBER: _ClassVar[int]
    IS_GRID_FIELD_NUMBER: _ClassVar[int]
    FORWARD_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    csk: str
    sk: str
    is_grid: bool
    forward: str
    result: QueryResult
    def __init__(self, csk: _Optional[str] = ..., sk: _Optional[str] = ..., is_grid: _Optional[bool] = ..., forward: _Optional[str] = ..., result: _Optional[_Union[QueryResult, _Mapping]] = ...) -> None: ...

class GridHello(_message.Message):
    __slots__ = ("nodes", "capacity", "uptime", "seal")
    NODES_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    SEAL_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[HostedNode]
    capacity: int
    uptime: float
    seal: Seal
    def __init__(self, nodes: _Optional[_Iterable[_Union[HostedNode, _Mapping]]] = ..., capacity: _Optional[int] = ..., uptime: _Optional[float] = ..., seal: _Optional[_Union[Seal, _Mapping]] = ...) -> None: ...

class HostedNode(_message.Message):
    __slots__ = ("info", "key", "admitted")
    INFO_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    ADMITTED_FIELD_NUMBER: _ClassVar[int]
    info: NodeInfo
    key: str
    admitted: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, info: _Optional[_Union[NodeInfo, _Mapping]] = ..., key: _Optional[str] = ..., admitted: _Optional[_Iterable[str]] = ...) -> None: ...

class SpawnNode(_message.Message):
    __slots__ = ("request", "worldpath", "gx", "gy", "gsize", "role", "max_users", "instance", "seal")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    WORLDPATH_FIELD_NUMBER: _ClassVar[int]
    GX_FIELD_NUMBER: _ClassVar[int]
    GY_FIELD_NUMBER: _ClassVar[int]
    GSIZE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MAX_USERS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    SEAL_FIELD_NUMBER: _ClassVar[int]
    request: int
    worldpath: str
    gx: int
    gy: int
    gsize: float
    role: str
    max_users: int
    instance: int
    seal: Seal
    def __init__(self, request: _Optional[int] = ..., worldpath: _Optional[str] = ..., gx: _Optional[int] = ..., gy: _Optional[int] = ..., gsize: _Optional[float] = ..., role: _Optional[str] = ..., max_users: _Optional[int] = ..., instance: _Optional[int] = ..., seal: _Optional[_Union[Seal, _Mapping]] = ...) -> None: ...

class CloseNode(_message.Message):
    __slots__ = ("id", "key", "superseded", "seal")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_FIELD_NUMBER: _ClassVar[int]
    SEAL_FIELD_NUMBER: _ClassVar[int]
    id: int
    key: str
    superseded: bool
    seal: Seal
    def __init__(self, id: _Optional[int] = ..., key: _Optional[str] = ..., superseded: _Optional[bool] = ..., seal: _Optional[_Union[Seal, _Mapping]] = ...) -> None: ...

class NodeReady(_message.Message):
    __slots__ = ("request", "id", "key", "refused", "reason", "seal")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SEAL_FIELD_NUMBER: _ClassVar[int]
    request: int
    id: int
    key: str
    refused: bool
    reason: str
    seal: Seal
    def __init__(self, request: _Optional[int] = ..., id: _Optional[int] = ..., key: _Optional[str] = ..., refused: _Optional[bool] = ..., reason: _Optional[str] = ..., seal: _Optional[_Union[Seal, _Mapping]] = ...) -> None: ...

class AdminShutdown(_message.Message):
    __slots__ = ("reason", "seal")
    REASON_FIELD_NUMBER: _ClassVar[int]
    SEAL_FIELD_NUMBER: _ClassVar[int]
    reason: str
    seal: Seal
    def __init__(self, reason: _Optional[str] = ..., seal: _Optional[_Union[Seal, _Mapping]] = ...) -> None: ...

class GameMessage(_message.Message):
    __slots__ = ("sk", "id", "type", "body")
    SK_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    sk: str
    id: int
    type: str
    body: bytes
    def __init__(self, sk: _Optional[str] = ..., id: _Optional[int] = ..., type: _Optional[str] = ..., body: _Optional[bytes] = ...) -> None: ...

class ServerGameMessage(_message.Message):
    __slots__ = ("sk", "id", "type", "body")
    SK_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    sk: str
    id: int
    type: str
    body: bytes
    def __init__(self, sk: _Optional[str] = ..., id: _Optional[int] = ..., type: _Optional[str] = ..., body: _Optional[bytes] = ..., **kwargs) -> None: ...

class AdminReload(_message.Message):
    __slots__ = ("seal",)
    SEAL_FIELD_NUMBER: _ClassVar[int]
    seal: Seal
    def __init__(self, seal: _Optional[_Union[Seal, _Mapping]] = ...) -> None: ...

class AdminReloadReply(_message.Message):
    __slots__ = ("ok", "reloaded", "errors", "seal")
    OK_FIELD_NUMBER: _ClassVar[int]
    RELOADED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    SEAL_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    reloaded: int
    errors: _containers.RepeatedScalarFieldContainer[str]
    seal: Seal
    def __init__(self, ok: _Optional[bool] = ..., reloaded: _Optional[int] = ..., errors: _Optional[_Iterable[str]] = ..., seal: _Optional[_Union[Seal, _Mapping]] = ...) -> None: ...

class GridClosing(_message.Message):
    __slots__ = ("reason", "seal")
    REASON_FIELD_NUMBER: _ClassVar[int]
    SEAL_FIELD_NUMBER: _ClassVar[int]
    reason: str
    seal: Seal
    def __init__(self, reason: _Optional[str] = ..., seal: _Optional[_Union[Seal, _Mapping]] = ...) -> None: ...

class MapRequest(_message.Message):
    __slots__ = ("request", "seal")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    SEAL_FIELD_NUMBER: _ClassVar[int]
    request: int
    seal: Seal
    def __init__(self, request: _Optional[int] = ..., seal: _Optional[_Union[Seal, _Mapping]] = ...) -> None: ...

class MapReport(_message.Message):
    __slots__ = ("request", "part", "parts", "nodes", "seal")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    SEAL_FIELD_NUMBER: _ClassVar[int]
    request: int
    part: int
    parts: int
    nodes: _containers.RepeatedCompositeFieldContainer[MapNode]
    seal: Seal
    def __init__(self, request: _Optional[int] = ..., part: _Optional[int] = ..., parts: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[MapNode, _Mapping]]] = ..., seal: _Optional[_Union[Seal, _Mapping]] = ...) -> None: ...

class MapNode(_message.Message):
    __slots__ = ("id", "worldpath", "gx", "gy", "gsize", "instance", "role", "max_users", "agents")
    ID_FIELD_NUMBER: _ClassVar[int]
    WORLDPATH_FIELD_NUMBER: _ClassVar[int]
    GX_FIELD_NUMBER: _ClassVar[int]
    GY_FIELD_NUMBER: _ClassVar[int]
    GSIZE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MAX_USERS_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    id: int
    worldpath: str
    gx: int
    gy: int
    gsize: float
    instance: int
    role: str
    max_users: int
    agents: _containers.RepeatedCompositeFieldContainer[MapAgent]
    def __init__(self, id: _Optional[int] = ..., worldpath: _Optional[str] = ..., gx: _Optional[int] = ..., gy: _Optional[int] = ..., gsize: _Optional[float] = ..., instance: _Optional[int] = ..., role: _Optional[str] = ..., max_users: _Optional[int] = ..., agents: _Optional[_Iterable[_Union[MapAgent, _Mapping]]] = ...) -> None: ...

class MapAgent(_message.Message):
    __slots__ = ("jid", "name", "x", "y", "z", "npc")
    JID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    NPC_FIELD_NUMBER: _ClassVar[int]
    jid: str
    name: str
    x: float
    y: float
    z: float
    npc: bool
    def __init__(self, jid: _Optional[str] = ..., name: _Optional[str] = ..., x: _Optional[float] = ..., y: _Optional[float] = ..., z: _Optional[float] = ..., npc: _Optional[bool] = ...) -> None: ...

class AdminCommand(_message.Message):
    __slots__ = ("command", "args", "request", "seal")
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    SEAL_FIELD_NUMBER: _ClassVar[int]
    command: str
    args: _containers.RepeatedScalarFieldContainer[str]
    request: int
    seal: Seal
    def __init__(self, command: _Optional[str] = ..., args: _Optional[_Iterable[str]] = ..., request: _Optional[int] = ..., seal: _Optional[_Union[Seal, _Mapping]] = ...) -> None: ...

class AdminCommandReply(_message.Message):
    __slots__ = ("request", "ok", "text", "json", "seal")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    SEAL_FIELD_NUMBER: _ClassVar[int]
    request: int
    ok: bool
    text: str
    json: str
    seal: Seal
    def __init__(self, request: _Optional[int] = ..., ok: _Optional[bool] = ..., text: _Optional[str] = ..., json: _Optional[str] = ..., seal: _Optional[_Union[Seal, _Mapping]] = ...) -> None: ...
