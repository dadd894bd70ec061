module network './modules/network.bicep' = {
  name: 'network'
}
