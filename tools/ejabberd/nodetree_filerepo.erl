%%% nodetree_filerepo: a pubsub node tree for ejabberd 23.01 in which
%%% XEP-0248/XEP-0214 collections actually contain their children.
%%%
%%% Why: ejabberd 23.01 only ships the `flat' and `pep' node plugins. With
%%% `flat', `pubsub#node_type=collection' and `pubsub#collection=<parent>' are
%%% stored, but the stock tree (nodetree_tree) takes a node's parent from its
%%% name's path, which for `flat' is always "no parent". So disco#items of a
%%% collection is empty and subscribers of a collection hear nothing from
%%% the nodes below it.
%%%
%%% What: everything is delegated to nodetree_tree (same mnesia table, so it
%%% can be switched on and off over existing data) except that
%%%  - create_node/6 and set_node/1 take the parent from the node's
%%%    `collection' option (first value; an empty value means top level);
%%%    the parent must exist, be a collection, be owned by the node's owner
%%%    (or by the service), and must not lie below the node itself;
%%%  - get_subnodes_tree/3 returns the node and everything below it, so
%%%    deleting a collection deletes (and notifies) its whole subtree;
%%%  - get_subnodes/3 applies its limit after matching the parent (the stock
%%%    one drops children when the service has more than the limit of nodes).
%%% The rest of mod_pubsub already follows parents: notifications go to the
%%% subscribers of every ancestor (get_parentnodes_tree), and disco#items of a
%%% node lists its children (get_subnodes).
%%%
%%% Install on your own ejabberd 23.01:
%%%   erlc -I /usr/lib/x86_64-linux-gnu/ejabberd-23.01/include \
%%%        -pa /usr/lib/x86_64-linux-gnu/ejabberd-23.01/ebin \
%%%        -o EBIN nodetree_filerepo.erl
%%% put EBIN on the code path (ejabberdctl.cfg: ERL_OPTIONS="-pa EBIN"), and
%%% in ejabberd.yml:  mod_pubsub: {plugins: [flat], nodetree: filerepo, ...}
%%% then restart ejabberd. See tools/ejabberd/README.md.
-module(nodetree_filerepo).
-behaviour(gen_pubsub_nodetree).

-include("pubsub.hrl").

-export([init/3, terminate/2, options/0, set_node/1,
         get_node/3, get_node/2, get_node/1, get_nodes/2, get_nodes/1,
         get_all_nodes/1, get_parentnodes/3, get_parentnodes_tree/3,
         get_subnodes/3, get_subnodes_tree/3, create_node/6, delete_node/2]).

-define(TREE, nodetree_tree).

%% Plain delegation.
init(Host, ServerHost, Opts) -> ?TREE:init(Host, ServerHost, Opts).
terminate(Host, ServerHost) -> ?TREE:terminate(Host, ServerHost).
options() -> ?TREE:options().
get_node(Host, Node, From) -> ?TREE:get_node(Host, Node, From).
get_node(Host, Node) -> ?TREE:get_node(Host, Node).
get_node(Nidx) -> ?TREE:get_node(Nidx).
get_nodes(Host, Limit) -> ?TREE:get_nodes(Host, Limit).
get_nodes(Host) -> ?TREE:get_nodes(Host).
get_all_nodes(Host) -> ?TREE:get_all_nodes(Host).
get_parentnodes(Host, Node, From) -> ?TREE:get_parentnodes(Host, Node, From).
get_parentnodes_tree(Host, Node, From) ->
    ?TREE:get_parentnodes_tree(Host, Node, From).

%% Children of Node (disco#items). The stock version applies Limit before
%% filtering on the parent, so with the default max_nodes_discoitems (100)
%% children go missing once the service holds 100+ nodes that have a parent;
%% here the parent is part of the match.
get_subnodes({_, _, _} = Host, Node, Limit) -> ?TREE:get_subnodes(Host, Node, Limit);
get_subnodes(Host, <<>>, Limit) -> ?TREE:get_subnodes(Host, <<>>, Limit);
get_subnodes(Host, Node, Limit) ->
    Spec = [{#pubsub_node{nodeid = {Host, '_'}, parents = [Node], _ = '_'}, [], ['$_']}],
    case Limit of
        infinity -> mnesia:select(pubsub_node, Spec);
        _ -> case mnesia:select(pubsub_node, Spec, Limit, read) of
                 {Nodes, _Cont} -> Nodes;
                 '$end_of_table' -> []
             end
    end.

%% PEP nodes ({U,S,R} hosts) have no hierarchy: leave them alone.
create_node({_, _, _} = Host, Node, Type, Owner, Options, Parents) ->
    ?TREE:create_node(Host, Node, Type, Owner, Options, Parents);
create_node(Host, Node, Type, Owner, Options, Parents) ->
    %% nodetree_tree checks that the parent exists and that Owner owns it.
    NewParents = parents(Options, Parents),
    case check_parent(Host, Node, NewParents) of
        ok -> ?TREE:create_node(Host, Node, Type, Owner, Options, NewParents);
        Err -> Err
    end.

set_node(#pubsub_node{nodeid = {{_, _, _}, _}} = N) ->
    ?TREE:set_node(N);
set_node(#pubsub_node{nodeid = {Host, Node}, parents = Old,
                      owners = Owners, options = Options} = N) ->
    case parents(Options, Old) of
        Old -> ?TREE:set_node(N);
        New ->
            case check_parent(Host, Node, New) of
                ok -> check_owner(Host, New, Owners,
                                  fun() -> ?TREE:set_node(N#pubsub_node{parents = New}) end);
                Err -> Err
            end
    end.

%% The node itself and all its descendants: one pass over the table, then
%% a walk down from Node (a visited set guards against any stored cycle).
get_subnodes_tree(Host, Node, _From) ->
    case get_node(Host, Node) of
        #pubsub_node{} = Root ->
            Children = mnesia:foldl(
                         fun(#pubsub_node{nodeid = {H, _}, parents = [P | _]} = R, M)
                               when H == Host ->
                                 maps:update_with(P, fun(L) -> [R | L] end, [R], M);
                            (_, M) -> M
                         end, #{}, pubsub_node),
            walk([Root], Children, #{}, []);
        _ -> []
    end.

delete_node(Host, Node) ->
    Removed = get_subnodes_tree(Host, Node, undefined),
    lists:foreach(fun(#pubsub_node{nodeid = {_, N}, id = Nidx}) ->
                          pubsub_index:free(node, Nidx),
                          mnesia:delete({pubsub_node, {Host, N}})
                  end, Removed),
    Removed.

%%% Internal

%% The `collection' option, when present, decides; otherwise keep Default.
parents(Options, Default) ->
    case lists:keyfind(collection, 1, Options) of
        {collection, [P | _]} when P /= <<>> -> [P];
        {collection, _} -> [];
        false -> Default
    end.

check_parent(_Host, _Node, []) -> ok;
check_parent(_Host, Node, [Node]) -> not_acceptable(<<"A node cannot contain itself">>);
check_parent(Host, Node, [Parent]) ->
    case ?TREE:get_node(Host, Parent) of
        #pubsub_node{options = POpts} ->
            case {lists:keyfind(node_type, 1, POpts), below(Host, Parent, Node, 0)} of
                {{node_type, collection}, false} -> ok;
                {{node_type, collection}, true} ->
                    not_acceptable(<<"The collection lies below this node">>);
                _ -> not_acceptable(<<"The parent is not a collection node">>)
            end;
        Err -> Err
    end.

%% Is Node an ancestor of (or equal to) Parent? Depth-capped for safety.
below(_Host, Node, Node, _) -> true;
below(_Host, _, _, Depth) when Depth > 1000 -> true;
below(Host, Parent, Node, Depth) ->
    case ?TREE:get_parentnodes(Host, Parent, undefined) of
        [Up | _] -> below(Host, Up, Node, Depth + 1);
        [] -> false
    end.

%% Moving a node under another collection needs the same right as creating
%% it there: one of its owners owns the collection (or the service does).
check_owner(_Host, [], _Owners, Fun) -> Fun();
check_owner(Host, [Parent], Owners, Fun) ->
    #pubsub_node{owners = POwners} = ?TREE:get_node(Host, Parent),
    case POwners == [{<<>>, Host, <<>>}] orelse
         lists:any(fun(O) -> lists:member(O, POwners) end, Owners) of
        true -> Fun();
        false -> {error, xmpp:err_forbidden()}
    end.

walk([], _Children, _Seen, Acc) -> lists:reverse(Acc);
walk([#pubsub_node{nodeid = {_, N}} = R | Rest], Children, Seen, Acc) ->
    case maps:is_key(N, Seen) of
        true -> walk(Rest, Children, Seen, Acc);
        false -> walk(maps:get(N, Children, []) ++ Rest, Children,
                      Seen#{N => true}, [R | Acc])
    end.

not_acceptable(Text) ->
    {error, xmpp:err_not_acceptable(Text, ejabberd_option:language())}.
